"""Errors as each client raises them against its cloud: botocore's modeled exceptions with
SageMaker's codes and statuses, google-api-core's exceptions from Google's error shape."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from google.api import httpbody_pb2
from google.api_core import exceptions

from endpointkit import Endpoint, VersionSpec
from endpointkit.adapters.local import LocalBackend
from tests.clients.conftest import endpoint_path, prediction_client
from tests.conformance.suite import Versions

pytestmark = pytest.mark.slow  # real processes and sockets

BODY = b'{"instances": [[5.1, 3.5]]}'


def refusing(root: Path, name: str) -> VersionSpec:
    """A version whose model answers 422 to every request."""
    model_dir = root / f"{name}-refuses"
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).parent / "models" / "unprocessable.py", model_dir)
    return VersionSpec(name=name, model=str(model_dir), predictor="unprocessable:Refuses")


def runtime(url: str) -> object:
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_boto3_raises_sagemakers_modeled_errors(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.rejecting("v2"), traffic={"v1": 100, "v2": 0})
    client = runtime(local.gateway_url())
    with pytest.raises(client.exceptions.ValidationError) as caught:  # type: ignore[attr-defined]
        client.invoke_endpoint(EndpointName="no-such-endpoint", Body=BODY)  # type: ignore[attr-defined]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "no-such-endpoint" in caught.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.ValidationError) as caught:  # type: ignore[attr-defined]
        client.invoke_endpoint(EndpointName=ep.name, Body=BODY, TargetVariant="v9")  # type: ignore[attr-defined]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "v9" in caught.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.ModelError) as caught:  # type: ignore[attr-defined]
        client.invoke_endpoint(EndpointName=ep.name, Body=BODY, TargetVariant="v2")  # type: ignore[attr-defined]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert caught.value.response["OriginalStatusCode"] == 400


def test_gapic_rest_raises_api_core_exceptions(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend, tmp_path: Path
) -> None:
    ep = make_endpoint(refusing(tmp_path, "v1"))
    client = prediction_client(local.gateway_url())
    # Vertex answers a model's 4xx on :predict with 400 FAILED_PRECONDITION, which api-core's
    # REST path raises as BadRequest (gRPC: FailedPrecondition, a BadRequest too).
    with pytest.raises(exceptions.BadRequest, match="feature 'age' is missing") as caught:
        client.predict(endpoint=endpoint_path(ep.name), instances=[[1.0]])
    assert caught.value.response.json()["error"]["status"] == "FAILED_PRECONDITION"
    with pytest.raises(exceptions.BadRequest, match="feature 'age' is missing"):
        client.raw_predict(
            endpoint=endpoint_path(ep.name),
            http_body=httpbody_pb2.HttpBody(content_type="application/json", data=BODY),
        )
    with pytest.raises(exceptions.NotFound, match="nope"):
        client.predict(endpoint=endpoint_path("nope"), instances=[[1.0]])
    with pytest.raises(exceptions.MethodNotImplemented):
        client.explain(endpoint=endpoint_path(ep.name), instances=[[1.0]])
