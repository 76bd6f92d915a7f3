"""Unchanged cloud clients against local endpoints, bearer tokens, and rate limits, each in the
protocol's own error shape."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from endpointkit.errors import PermissionDenied, Throttled, ValidationError
from endpointkit.invocation import InvokeRequest
from tests.conformance.suite import Versions
from tests.local.harness import local_backend

pytestmark = pytest.mark.slow  # real processes and sockets

BODY = b'{"instances": [[5.1, 3.5]]}'


def sagemaker_runtime(url: str) -> object:
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def vertex_client(url: str, credentials: object | None = None) -> object:
    aiplatform_v1 = pytest.importorskip("google.cloud.aiplatform_v1")
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    return aiplatform_v1.PredictionServiceClient(
        client_options=ClientOptions(api_endpoint=url),
        transport="rest",
        credentials=credentials or AnonymousCredentials(),
    )


def test_boto3_sagemaker_runtime_invokes_local_endpoints(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.rejecting("v2"), traffic={"v1": 100, "v2": 0})
    client = sagemaker_runtime(local.gateway_url())
    answer = client.invoke_endpoint(  # type: ignore[attr-defined]
        EndpointName=ep.name, Body=BODY, ContentType="application/json", CustomAttributes="a=1"
    )
    assert answer["Body"].read() == b'{"predictions":["v1"]}'
    assert answer["InvokedProductionVariant"] == "v1"
    assert answer["ContentType"] == "application/json"
    assert answer["CustomAttributes"] == "a=1"
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint(  # type: ignore[attr-defined]
            EndpointName=ep.name, Body=BODY, ContentType="application/json", TargetVariant="v2"
        )
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert 400 <= error["OriginalStatusCode"] < 500
    assert "rejects every input" in error["OriginalMessage"]
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint(  # type: ignore[attr-defined]
            EndpointName="no-such-endpoint", Body=BODY, ContentType="application/json"
        )
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "no-such-endpoint" in caught.value.response["Error"]["Message"]


def test_vertex_gapic_client_predicts_on_local_endpoints(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    client = vertex_client(local.gateway_url())
    answer = client.predict(  # type: ignore[attr-defined]
        endpoint=f"projects/demo/locations/us-central1/endpoints/{ep.name}",
        instances=[[5.1, 3.5], [6.2, 2.9]],
    )
    assert list(answer.predictions) == ["v1", "v1"]
    assert answer.deployed_model_id == "v1"
    from google.api_core import exceptions

    with pytest.raises(exceptions.NotFound):
        client.predict(  # type: ignore[attr-defined]
            endpoint="projects/demo/locations/us-central1/endpoints/nope", instances=[[1.0]]
        )
    raw = httpx.post(
        f"{local.gateway_url()}/v1/projects/demo/locations/us-central1/endpoints/{ep.name}"
        ":rawPredict",
        content=BODY,
        headers={"content-type": "application/json"},
    )
    assert raw.json() == {"predictions": ["v1"]}
    assert raw.headers["x-vertex-ai-deployed-model-id"] == "v1"


def test_rate_limit_answers_429_with_retry_after_in_each_shape(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    base = local.gateway_url()
    local.set_rate_limit(ep.name, 0.5, burst=1)
    with httpx.Client(base_url=base) as http:
        paths = {
            "plain": f"/endpoints/{ep.name}/predict",
            "sagemaker": f"/endpoints/{ep.name}/invocations",
            "vertex": f"/v1/projects/p/locations/l/endpoints/{ep.name}:predict",
        }
        assert http.post(paths["plain"], content=BODY).status_code == 200  # the one burst token
        answers = {kind: http.post(path, content=BODY) for kind, path in paths.items()}
    for answer in answers.values():
        assert answer.status_code == 429
        assert int(answer.headers["retry-after"]) >= 1
    assert "rate limit" in answers["plain"].json()["error"]
    assert answers["sagemaker"].headers["x-amzn-errortype"] == "ThrottlingException"
    assert "rate limit" in answers["sagemaker"].json()["message"]
    assert answers["vertex"].json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    with pytest.raises(Throttled, match="rate limit"):
        local.invoke(InvokeRequest(ep.name, BODY))
    client = sagemaker_runtime(base)
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint(EndpointName=ep.name, Body=BODY)  # type: ignore[attr-defined]
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    from google.api_core import exceptions

    with pytest.raises(exceptions.TooManyRequests):
        vertex_client(base).predict(  # type: ignore[attr-defined]
            endpoint=f"projects/p/locations/l/endpoints/{ep.name}", instances=[[1.0]]
        )
    local.set_rate_limit(ep.name, None)
    assert ep.predict([[1.0]]).version == "v1"


def test_bearer_token_protects_every_front_door(tmp_path: Path, versions: Versions) -> None:
    with local_backend(tmp_path / "home", token="s3cret-token") as local:
        ep = Endpoint.create("guarded", versions.echo("v1"), backend=local, timeout=60)
        assert ep.predict([[1.0]]).version == "v1"  # the backend sends its token
        base = local.gateway_url()
        with httpx.Client(base_url=base) as http:
            plain = http.post("/endpoints/guarded/predict", content=BODY)
            assert plain.status_code == 401
            assert plain.headers["www-authenticate"].startswith("Bearer")
            wrong = http.post(
                "/endpoints/guarded/predict",
                content=BODY,
                headers={"authorization": "Bearer s3cret-tokeX"},
            )
            assert wrong.status_code == 401
            sm = http.post("/endpoints/guarded/invocations", content=BODY)
            assert sm.status_code == 403  # as AWS answers an unsigned request
            assert sm.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
            assert "x-amzn-errortype" in sm.headers
            vx = http.post("/v1/projects/p/locations/l/endpoints/guarded:predict", content=BODY)
            assert vx.json()["error"]["status"] == "UNAUTHENTICATED"
            good = http.post(
                "/endpoints/guarded/predict",
                content=BODY,
                headers={"authorization": "Bearer s3cret-token"},
            )
            assert good.json() == {"predictions": ["v1"]}
        from google.oauth2.credentials import Credentials

        vertex = vertex_client(base, Credentials(token="s3cret-token"))
        answer = vertex.predict(  # type: ignore[attr-defined]
            endpoint="projects/p/locations/l/endpoints/guarded", instances=[[1.0]]
        )
        assert list(answer.predictions) == ["v1"]
        outsider = LocalBackend(home=tmp_path / "home", token="wrong")
        try:
            with pytest.raises(PermissionDenied, match="bearer token"):
                outsider.invoke(InvokeRequest("guarded", BODY))
        finally:
            outsider.close()
        ep.delete()


def test_binding_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="without a bearer token"):
        LocalBackend(home=tmp_path / "home", host="0.0.0.0")
