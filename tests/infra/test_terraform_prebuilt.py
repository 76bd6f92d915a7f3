"""Terraform export of a framework version: the aws provider's prebuilt ECR image data source,
with the repository and tag the SageMaker SDK's image_uris picks, applied against moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from endpointkit.spec import EndpointSpec
from endpointkit.terraform import export_terraform
from tests.infra.conftest import Terraform, aws_provider

image_uris = pytest.importorskip(
    "sagemaker.core.image_uris", reason="pip install 'endpointkit[prebuilt]' (sagemaker-core)"
)
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
REGION = "eu-west-1"  # not the SDK lookup's own region: the provider fills in the registry


def framework_spec() -> EndpointSpec:
    return EndpointSpec.from_dict(
        {
            "name": "churn",
            "backend": "sagemaker",
            "versions": [
                {
                    "name": "v1",
                    "model": "s3://models/churn/v1.tar.gz",
                    "framework": "sklearn",
                    "framework_version": "1.2-1",
                    "env": {
                        "SAGEMAKER_PROGRAM": "inference.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                    },
                }
            ],
        }
    )


def test_export_names_the_prebuilt_image_data_source() -> None:
    doc = export_terraform(framework_spec())
    assert doc["data"]["aws_sagemaker_prebuilt_ecr_image"]["v1"] == {
        "repository_name": "sagemaker-scikit-learn",
        "image_tag": "1.2-1-cpu-py3",
    }
    container = doc["resource"]["aws_sagemaker_model"]["v1"]["primary_container"]
    assert container["image"] == "${data.aws_sagemaker_prebuilt_ecr_image.v1.registry_path}"


def test_the_applied_model_runs_the_image_the_sdk_names(
    terraform: Terraform, moto_url: str
) -> None:
    import boto3

    provider: dict[str, Any] = aws_provider(moto_url)
    provider["provider"]["aws"]["region"] = REGION
    (terraform.workdir / "churn.tf.json").write_text(json.dumps(export_terraform(framework_spec())))
    (terraform.workdir / "provider.tf.json").write_text(json.dumps(provider))
    terraform.init()
    terraform.apply(f"-var=execution_role_arn={ROLE}")
    client = boto3.client(
        "sagemaker",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    (model,) = client.list_models()["Models"]
    image = client.describe_model(ModelName=model["ModelName"])["PrimaryContainer"]["Image"]
    assert image == image_uris.retrieve(
        "sklearn",
        region=REGION,
        version="1.2-1",
        instance_type="ml.m5.large",
        image_scope="inference",
    )
    terraform.destroy(f"-var=execution_role_arn={ROLE}")
