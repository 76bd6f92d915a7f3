"""Terraform export and modules, run with real terraform against moto's SageMaker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from endpointkit.errors import ValidationError
from endpointkit.spec import EndpointSpec
from endpointkit.terraform import export_terraform
from tests.infra.conftest import Terraform, aws_provider

INFRA = Path(__file__).resolve().parents[2] / "infra"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def sagemaker_spec(**overrides: Any) -> EndpointSpec:
    data: dict[str, Any] = {
        "name": "churn",
        "backend": "sagemaker",
        "versions": [
            {
                "name": "v1",
                "model": "s3://models/churn/v1.tar.gz",
                "image": "img:1",
                "resources": {"instance_type": "ml.m5.large", "min_replicas": 2},
                "health": {"startup_timeout_s": 1800, "period_s": 5},
            },
            {
                "name": "v2",
                "model": "s3://models/churn/v2.tar.gz",
                "image": "img:1",
                "env": {"THREADS": "2"},
            },
        ],
        "traffic": {"v1": 90, "v2": 10},
        "tags": {"team": "risk"},
    }
    data.update(overrides)
    return EndpointSpec.from_dict(data)


def test_terraform_fmt_is_clean(terraform: Terraform) -> None:
    result = terraform.run("fmt", "-check", "-recursive", str(INFRA), check=False)
    assert result.returncode == 0, f"unformatted files:\n{result.stdout}"


def test_export_is_deterministic_and_complete() -> None:
    spec = sagemaker_spec()
    first = json.dumps(export_terraform(spec))
    assert first == json.dumps(export_terraform(sagemaker_spec()))
    doc = json.loads(first)
    resources = doc["resource"]
    assert sorted(resources["aws_sagemaker_model"]) == ["v1", "v2"]
    model = resources["aws_sagemaker_model"]["v2"]
    assert model["name"] == f"churn-v2-{spec.version('v2').spec_hash}"
    assert model["primary_container"]["environment"] == {
        "ENDPOINTKIT_VERSION": "v2",
        "THREADS": "2",
    }
    config = resources["aws_sagemaker_endpoint_configuration"]["churn"]
    assert config["name_prefix"] == "churn-"
    assert config["lifecycle"] == [{"create_before_destroy": True}]
    weights = {
        v["variant_name"]: v["initial_variant_weight"] for v in config["production_variants"]
    }
    assert weights == {"v1": 90.0, "v2": 10.0}
    assert config["production_variants"][0]["initial_instance_count"] == 2
    endpoint = resources["aws_sagemaker_endpoint"]["churn"]
    assert endpoint["lifecycle"] == [{"ignore_changes": ["endpoint_config_name"]}]
    assert endpoint["tags"]["managed-by"] == "endpointkit"


def test_export_shadow_and_serverless() -> None:
    spec = sagemaker_spec(
        versions=[
            {"name": "v1", "model": "s3://m/v1.tar.gz"},
            {
                "name": "v2",
                "model": "s3://m/v2.tar.gz",
                "serverless": {"memory_mb": 4096, "max_concurrency": 10},
            },
        ],
        traffic={"v1": 100, "v2": 0},
        shadow={"version": "v2", "sample_percent": 20},
    )
    config = export_terraform(spec)["resource"]["aws_sagemaker_endpoint_configuration"]["churn"]
    assert [v["variant_name"] for v in config["production_variants"]] == ["v1"]
    (shadow,) = config["shadow_production_variants"]
    assert shadow["variant_name"] == "v2"
    assert shadow["initial_variant_weight"] == 20.0
    assert shadow["serverless_config"] == {"max_concurrency": 10, "memory_size_in_mb": 4096}


def test_export_refuses_what_terraform_cannot_deploy(tmp_path: Path) -> None:
    local = sagemaker_spec(versions=[{"name": "v1", "model": str(tmp_path)}], traffic=None)
    with pytest.raises(ValidationError, match=r"needs an s3:// model URI"):
        export_terraform(local)
    with pytest.raises(ValidationError, match="cannot export endpoint 'churn' on backend 'local'"):
        export_terraform(sagemaker_spec(backend="local"))


def test_export_vertex_runs_endpointkit_for_what_the_provider_cannot() -> None:
    spec = EndpointSpec.from_dict(
        {
            "name": "churn",
            "backend": "vertex",
            "settings": {"project": "p", "location": "europe-west4"},
            "versions": [{"name": "v1", "model": "gs://m/v1/"}],
        }
    )
    doc = export_terraform(spec)
    endpoint = doc["resource"]["google_vertex_ai_endpoint"]["churn"]
    assert endpoint["location"] == "europe-west4"
    deploy = doc["resource"]["terraform_data"]["churn_deploy"]
    create, destroy = deploy["provisioner"]
    assert create["local-exec"]["command"] == "endpointkit tf apply"
    assert json.loads(create["local-exec"]["environment"]["ENDPOINTKIT_SPEC"])["name"] == "churn"
    assert destroy["local-exec"]["when"] == "destroy"
    assert destroy["local-exec"]["environment"]["ENDPOINTKIT_ENDPOINT"] == (
        "${self.triggers_replace.endpoint}"
    )


def test_cli_export_writes_a_file(tmp_path: Path) -> None:
    spec_file = tmp_path / "churn.json"
    spec_file.write_text(sagemaker_spec().model_dump_json())
    out = tmp_path / "churn.tf.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "endpointkit.cli",
            "export",
            "terraform",
            str(spec_file),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text()) == export_terraform(sagemaker_spec())


def endpoint_weights(client: Any, name: str) -> dict[str, float]:
    described = client.describe_endpoint(EndpointName=name)
    config = client.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    return {v["VariantName"]: v["InitialVariantWeight"] for v in config["ProductionVariants"]}


def leftovers(client: Any) -> list[str]:
    return (
        [e["EndpointName"] for e in client.list_endpoints()["Endpoints"]]
        + [c["EndpointConfigName"] for c in client.list_endpoint_configs()["EndpointConfigs"]]
        + [m["ModelName"] for m in client.list_models()["Models"]]
    )


def test_exported_tf_json_applies_plans_clean_and_destroys(
    terraform: Terraform, moto_url: str, sagemaker_client: Any
) -> None:
    (terraform.workdir / "churn.tf.json").write_text(json.dumps(export_terraform(sagemaker_spec())))
    (terraform.workdir / "provider.tf.json").write_text(json.dumps(aws_provider(moto_url)))
    terraform.init()
    terraform.run("validate")
    terraform.apply(f"-var=execution_role_arn={ROLE}")
    assert terraform.output()["endpoint_name"] == "churn"
    assert endpoint_weights(sagemaker_client, "churn") == {"v1": 90.0, "v2": 10.0}
    # v1's health.startup_timeout_s went through the aws provider to the endpoint config.
    described = sagemaker_client.describe_endpoint(EndpointName="churn")
    variants = sagemaker_client.describe_endpoint_config(
        EndpointConfigName=described["EndpointConfigName"]
    )["ProductionVariants"]
    v1 = next(v for v in variants if v["VariantName"] == "v1")
    assert v1["ContainerStartupHealthCheckTimeoutInSeconds"] == 1800
    assert v1["ModelDataDownloadTimeoutInSeconds"] == 1800
    changed, text = terraform.plan_changes(f"-var=execution_role_arn={ROLE}")
    assert not changed, text
    terraform.destroy(f"-var=execution_role_arn={ROLE}")
    assert leftovers(sagemaker_client) == []


def test_module_applies_with_autoscaling_and_destroys(
    terraform: Terraform, moto_url: str, sagemaker_client: Any
) -> None:
    module = INFRA / "terraform" / "sagemaker-endpoint"
    (terraform.workdir / "main.tf.json").write_text(
        json.dumps(
            {
                "module": {
                    "churn": {
                        "source": str(module),
                        "name": "churn",
                        "execution_role_arn": ROLE,
                        "endpointkit_cleanup": False,  # Terraform alone in this test
                        "versions": [
                            {
                                "name": "v1",
                                "image": "img:1",
                                "model_data_url": "s3://m/v1.tar.gz",
                                "weight": 3,
                            },
                            {
                                "name": "v2",
                                "image": "img:1",
                                "model_data_url": "s3://m/v2.tar.gz",
                                "weight": 1,
                            },
                        ],
                    }
                },
                "output": {"models": {"value": "${module.churn.model_names}"}},
                **aws_provider(moto_url),
            }
        )
    )
    terraform.init()
    terraform.run("validate")
    terraform.apply()
    assert endpoint_weights(sagemaker_client, "churn") == {"v1": 3.0, "v2": 1.0}
    models = terraform.output()["models"]
    assert sorted(models) == ["v1", "v2"]
    assert all(
        name.startswith(f"churn-{v}-") and len(name) == len(f"churn-{v}-") + 12
        for v, name in models.items()
    )
    changed, text = terraform.plan_changes()
    assert not changed, text
    terraform.destroy()
    assert leftovers(sagemaker_client) == []


def test_examples_validate(terraform_env: dict[str, str], tmp_path: Path) -> None:
    import shutil

    example = tmp_path / "infra"
    shutil.copytree(INFRA, example)
    runner = Terraform(example / "examples" / "sagemaker", dict(terraform_env))
    runner.init()
    runner.run("validate")


def test_endpointkit_shifts_traffic_on_the_endpoint_terraform_created(
    terraform: Terraform, fake_sagemaker: Any, tmp_path: Path
) -> None:
    """Terraform creates the endpoint; endpointkit deploys v2 and shifts traffic; the next
    plan leaves the weights alone; destroy removes what both made."""
    from endpointkit import Endpoint, VersionSpec
    from endpointkit.adapters.sagemaker import SageMakerBackend
    from endpointkit.adapters.sagemaker._artifacts import pack_model
    from tests.conformance.suite import Versions

    fake = fake_sagemaker
    s3 = fake.client("s3")
    s3.create_bucket(Bucket="tf-models")
    models = Versions(tmp_path / "models")
    for version in ("v1", "v2"):
        body, _ = pack_model(Path(models.echo(version).model or ""))
        s3.put_object(Bucket="tf-models", Key=f"{version}/model.tar.gz", Body=body)
    settings = fake.settings()
    string_settings = {
        key: settings[key]
        for key in (
            "region",
            "endpoint_url",
            "runtime_endpoint_url",
            "aws_access_key_id",
            "aws_secret_access_key",
            "role_arn",
            "image",
        )
    }
    module = INFRA / "terraform" / "sagemaker-endpoint"
    provider = aws_provider(fake.endpoint_url)
    provider["provider"]["aws"]["region"] = settings["region"]
    (terraform.workdir / "main.tf.json").write_text(
        json.dumps(
            {
                "module": {
                    "churn": {
                        "source": str(module),
                        "name": "tfchurn",
                        "execution_role_arn": settings["role_arn"],
                        "versions": [
                            {
                                "name": "v1",
                                "image": settings["image"],
                                "model_data_url": "s3://tf-models/v1/model.tar.gz",
                                "environment": {"ENDPOINTKIT_PREDICTOR": "echo_predictor:Echo"},
                            }
                        ],
                        "endpointkit_command": f"{sys.executable} -m endpointkit.cli",
                        "endpointkit_settings": string_settings,
                    }
                },
                **provider,
            }
        )
    )
    terraform.init()
    terraform.apply()

    backend = SageMakerBackend(**settings)
    try:
        endpoint = Endpoint("tfchurn", backend)
        assert endpoint.status().version_names == ["v1"]
        assert endpoint.predict([[1.0]]).predictions == ["v1"]
        v2 = VersionSpec(
            name="v2", model="s3://tf-models/v2/model.tar.gz", predictor="echo_predictor:Echo"
        )
        endpoint.deploy(v2, traffic=10, timeout=120)
        state = endpoint.set_traffic({"v1": 50, "v2": 50}, timeout=120)
        assert state.traffic.serving() == {"v1": 50, "v2": 50}

        changed, text = terraform.plan_changes()
        assert not changed, text  # Terraform does not fight endpointkit over the endpoint
        weights = {
            v["VariantName"]: v["CurrentWeight"]
            for v in fake.client("sagemaker").describe_endpoint(EndpointName="tfchurn")[
                "ProductionVariants"
            ]
        }
        assert weights == {"v1": 50.0, "v2": 50.0}
        assert {endpoint.predict([[1.0]]).version for _ in range(30)} == {"v1", "v2"}
    finally:
        backend.close()
    terraform.destroy()
    sagemaker = fake.client("sagemaker")
    assert not [
        e for e in sagemaker.list_endpoints()["Endpoints"] if e["EndpointName"] == "tfchurn"
    ]
    assert not [
        c
        for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]
        if c["EndpointConfigName"].startswith("tfchurn")
    ]
    assert not [
        m for m in sagemaker.list_models()["Models"] if m["ModelName"].startswith("tfchurn")
    ]


def test_deploy_module_runs_endpointkit_through_terraform_against_the_vertex_fake(
    terraform: Terraform, tmp_path: Path
) -> None:
    """The endpointkit-deploy module (what vertex-endpoint uses for the steps the google
    provider cannot do): terraform apply deploys and splits, a changed spec re-runs it,
    terraform destroy deletes. The google provider is not on this machine, so the module is
    used on its own against the Vertex fake."""
    pytest.importorskip("google.cloud.aiplatform_v1", reason="needs endpointkit[vertex]")
    from endpointkit.adapters.vertex import VertexBackend
    from tests.conformance.suite import Versions
    from tests.fakes.vertex import VertexFake
    from tests.fakes.vertex_support import backend_settings

    models = Versions(tmp_path / "models")
    spec_file = tmp_path / "endpoint.json"

    def write_spec(traffic: dict[str, int]) -> None:
        spec_file.write_text(
            json.dumps(
                {
                    "name": "tfvertex",
                    "backend": "vertex",
                    "versions": [
                        models.echo(v).model_dump(exclude_none=True) for v in ("v1", "v2")
                    ],
                    "traffic": traffic,
                }
            )
        )

    with VertexFake(tmp_path / "vertex-fake", seed=5) as fake:
        settings = {k: str(v) for k, v in backend_settings(fake).items()}
        (terraform.workdir / "main.tf.json").write_text(
            json.dumps(
                {
                    "module": {
                        "deploy": {
                            "source": str(INFRA / "terraform" / "endpointkit-deploy"),
                            "endpoint": "tfvertex",
                            "backend": "vertex",
                            "spec_file": str(spec_file),
                            "settings": settings,
                            "endpointkit_command": f"{sys.executable} -m endpointkit.cli",
                        }
                    },
                }
            )
        )
        write_spec({"v1": 90, "v2": 10})
        terraform.init()
        terraform.apply()
        backend = VertexBackend(**backend_settings(fake))
        try:
            assert backend.get("tfvertex").traffic.serving() == {"v1": 90, "v2": 10}
            changed, _ = terraform.plan_changes()
            assert not changed
            write_spec({"v1": 0, "v2": 100})  # a changed spec re-runs endpointkit
            changed, _ = terraform.plan_changes()
            assert changed
            terraform.apply()
            assert backend.get("tfvertex").traffic.serving() == {"v2": 100}
            terraform.destroy()
            assert not backend.exists("tfvertex")
        finally:
            backend.close()
        assert not fake.live_processes()
