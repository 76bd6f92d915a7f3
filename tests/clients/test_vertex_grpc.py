"""Google's GAPIC `PredictionServiceClient` over its grpc transport against the gateway's gRPC
port, used as its documentation shows: only the channel (the gateway's address, plaintext on
loopback) and the credentials differ from the cloud."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.api import httpbody_pb2
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.prediction_service.transports import (
    PredictionServiceGrpcTransport,
)

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from endpointkit.adapters.local.commands import main as local_main
from tests.clients.conftest import endpoint_path
from tests.clients.test_errors import refusing
from tests.conformance.suite import Versions
from tests.local.harness import local_backend

pytestmark = pytest.mark.slow  # real processes and sockets

TOKEN = "grpc-test-token"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    """The module's gateway, serving gRPC on a free port too."""
    with local_backend(tmp_path_factory.mktemp("grpc-home"), seed=3, grpc_port=0) as backend:
        yield backend


def grpc_client(
    target: str, channel: grpc.Channel | None = None
) -> aiplatform_v1.PredictionServiceClient:
    """`PredictionServiceClient` on the grpc transport, over a plaintext channel to `target`."""
    transport = PredictionServiceGrpcTransport(channel=channel or grpc.insecure_channel(target))
    return aiplatform_v1.PredictionServiceClient(transport=transport)


def test_gateway_reports_its_grpc_port(
    local: LocalBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    target = local.gateway_grpc_target()
    assert target.startswith("127.0.0.1:")
    local_main(["status", "--home", str(local.home), "--output", "json"])
    report = json.loads(capsys.readouterr().out)
    assert f"127.0.0.1:{report['gateway']['grpc_port']}" == target


def test_grpc_predict_follows_the_split(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.echo("v2"), traffic={"v1": 100, "v2": 0})
    client = grpc_client(local.gateway_grpc_target())
    answer = client.predict(
        endpoint=endpoint_path(ep.name), instances=[[1.0, 2.0], [3.0, 4.0]], parameters={"k": 1}
    )
    assert list(answer.predictions) == ["v1", "v1"]
    assert answer.deployed_model_id == "v1"
    assert answer.model_version_id == "v1"
    pinned = client.predict(
        endpoint=endpoint_path(ep.name),
        instances=[[1.0]],
        metadata=[("x-vertex-ai-deployed-model-id", "v2")],
    )
    assert list(pinned.predictions) == ["v2"]


def test_grpc_raw_predict_round_trips_the_http_body(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    client = grpc_client(local.gateway_grpc_target())
    answer = client.raw_predict(
        endpoint=endpoint_path(ep.name),
        http_body=httpbody_pb2.HttpBody(
            content_type="application/json", data=b'{"instances": [[1, 2], [3, 4]]}'
        ),
    )
    assert answer.content_type == "application/json"
    assert json.loads(answer.data) == {"predictions": ["v1", "v1"]}


def test_grpc_stream_raw_predict_yields_http_bodies(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    client = grpc_client(local.gateway_grpc_target())
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
    parts = list(stream)
    assert len(parts) >= 1
    lines = [json.loads(line) for line in b"".join(p.data for p in parts).splitlines() if line]
    assert [line["index"] for line in lines] == [0, 1, 2]
    assert {line["prediction"] for line in lines} == {"v1"}


def test_grpc_errors_are_the_clouds(
    make_endpoint: Callable[..., Endpoint], local: LocalBackend, tmp_path: Path
) -> None:
    ep = make_endpoint(refusing(tmp_path, "v1"))
    client = grpc_client(local.gateway_grpc_target())
    # Vertex answers a model's 4xx with FAILED_PRECONDITION, which gRPC raises as such.
    with pytest.raises(exceptions.FailedPrecondition, match="feature 'age' is missing"):
        client.predict(endpoint=endpoint_path(ep.name), instances=[[1.0]])
    with pytest.raises(exceptions.FailedPrecondition, match="feature 'age' is missing"):
        client.raw_predict(
            endpoint=endpoint_path(ep.name),
            http_body=httpbody_pb2.HttpBody(content_type="application/json", data=b"{}"),
        )
    with pytest.raises(exceptions.NotFound, match="nope"):
        client.predict(endpoint=endpoint_path("nope"), instances=[[1.0]])
    with pytest.raises(exceptions.NotFound, match="v9"):
        client.predict(
            endpoint=endpoint_path(ep.name),
            instances=[[1.0]],
            metadata=[("x-vertex-ai-deployed-model-id", "v9")],
        )
    with pytest.raises(exceptions.InvalidArgument, match="projects/"):
        client.predict(endpoint=ep.name, instances=[[1.0]])
    with pytest.raises(exceptions.MethodNotImplemented):
        client.explain(endpoint=endpoint_path(ep.name), instances=[[1.0]])


def test_grpc_needs_the_token_when_the_gateway_does(tmp_path: Path, versions: Versions) -> None:
    with local_backend(tmp_path / "home", token=TOKEN, grpc_port=0) as backend:
        ep = Endpoint.create("tok", versions.echo("v1"), backend=backend, timeout=60)
        target = backend.gateway_grpc_target()
        with pytest.raises(exceptions.Unauthenticated, match="bearer token"):
            grpc_client(target).predict(endpoint=endpoint_path(ep.name), instances=[[1.0]])
        # The token as call credentials, as google-auth sends it to the cloud; gRPC sends call
        # credentials only over a secure or local channel.
        channel = grpc.secure_channel(
            target,
            grpc.composite_channel_credentials(
                grpc.local_channel_credentials(), grpc.access_token_call_credentials(TOKEN)
            ),
        )
        answer = grpc_client(target, channel).predict(
            endpoint=endpoint_path(ep.name), instances=[[1.0]]
        )
        assert list(answer.predictions) == ["v1"]
