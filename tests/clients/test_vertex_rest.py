"""Google's GAPIC `PredictionServiceClient` over REST against the local gateway, used as its
documentation shows: only `api_endpoint` and the credentials differ from the cloud."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from google.api import httpbody_pb2

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from tests.clients.conftest import endpoint_path, prediction_client
from tests.conformance.suite import Versions

pytestmark = pytest.mark.slow  # real processes and sockets


def test_gapic_rest_raw_predict_round_trips_the_http_body(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    client = prediction_client(local.gateway_url())
    answer = client.raw_predict(
        endpoint=endpoint_path(ep.name),
        http_body=httpbody_pb2.HttpBody(
            content_type="application/json", data=b'{"instances": [[1, 2], [3, 4]]}'
        ),
    )
    assert answer.content_type == "application/json"
    assert json.loads(answer.data) == {"predictions": ["v1", "v1"]}


def test_gapic_rest_stream_raw_predict_yields_http_bodies(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    client = prediction_client(local.gateway_url())
    stream = client.stream_raw_predict(
        request={
            "endpoint": endpoint_path(ep.name),
            "http_body": httpbody_pb2.HttpBody(
                content_type="application/json",
                data=b'{"instances": [1, 2, 3], "parameters": {"gap_s": 0.05}}',
            ),
        },
        metadata=[("accept", "application/jsonlines")],
    )
    chunks = b"".join(part.data for part in stream)
    lines = [json.loads(line) for line in chunks.splitlines() if line.strip()]
    assert [line["index"] for line in lines] == [0, 1, 2]
    assert {line["prediction"] for line in lines} == {"v1"}


def test_deployed_model_routes_pin_one_version(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.echo("v2"), traffic={"v1": 100, "v2": 0})
    base = f"{local.gateway_url()}/v1/{endpoint_path(ep.name)}"
    body = b'{"instances": [[1.0]]}'
    with httpx.Client() as http:
        for _ in range(3):
            answer = http.post(f"{base}/deployedModels/v2:predict", content=body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == ["v2"]
            assert answer.json()["deployedModelId"] == "v2"
        raw = http.post(
            f"{base}/deployedModels/v2:rawPredict",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert raw.json() == {"predictions": ["v2"]}
        assert raw.headers["x-vertex-ai-deployed-model-id"] == "v2"
        assert http.post(f"{base}:predict", content=body).json()["predictions"] == ["v1"]
        missing = http.post(f"{base}/deployedModels/v9:predict", content=body)
    assert missing.status_code == 404
    assert missing.json()["error"]["status"] == "NOT_FOUND"
    assert "v9" in missing.json()["error"]["message"]
