"""The Vertex backend with transport="grpc": the real GAPIC gRPC clients on a plaintext loopback
channel to the fake's gRPC front end (tests/fakes/vertex_grpc.py), which shares the REST fake's
state, faults and real serving processes. The shared scenarios run over gRPC in
tests/conformance/test_vertex.py; this module adds what is specific to the transport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from endpointkit.adapters.vertex import VertexBackend
from endpointkit.adapters.vertex._clients import is_loopback as _is_loopback
from endpointkit.endpoint import Endpoint
from endpointkit.errors import (
    AlreadyExists,
    DeploymentFailed,
    NotFound,
    Unsupported,
    ValidationError,
)
from endpointkit.invocation import InvokeRequest
from tests.conformance.suite import Versions
from tests.fakes.vertex import VertexFake
from tests.fakes.vertex_grpc import VertexGrpcFake
from tests.fakes.vertex_support import grpc_settings, make_backend
from tests.vertex.test_vertex_backend import assert_nothing_left, served, split_by_name


@pytest.fixture
def front(fake: VertexFake) -> Iterator[VertexGrpcFake]:
    with VertexGrpcFake(fake) as front:
        yield front


@pytest.fixture
def backend(fake: VertexFake, front: VertexGrpcFake) -> Iterator[VertexBackend]:
    backend = make_backend(fake, **grpc_settings(fake, front.target))
    yield backend
    backend.close()


def test_lifecycle_and_invocation_go_over_grpc(
    fake: VertexFake, front: VertexGrpcFake, backend: VertexBackend, versions: Versions
) -> None:
    ep = Endpoint.create("g", versions.echo("v1"), backend=backend)
    assert split_by_name(fake, "g") == {"v1": 100}
    ep.deploy(versions.echo("v2"), traffic=10)
    assert split_by_name(fake, "g") == {"v1": 90, "v2": 10}
    assert served(ep, 60) == {"v1", "v2"}  # RawPredict over gRPC names who answered
    ep.set_traffic({"v1": 50, "v2": 50})
    assert split_by_name(fake, "g") == {"v1": 50, "v2": 50}

    gapic = backend.predict("g", [[1, 2]])  # Predict: deployedModelId in the response
    assert gapic.version in ("v1", "v2")
    assert gapic.predictions == [gapic.version]
    raw = ep.invoke(b'{"instances": [[3]]}')  # RawPredict: the id comes as metadata
    ids = ep.status().details["deployed_model_ids"]
    assert raw.headers["X-Vertex-AI-Deployed-Model-Id"] == ids[raw.version or ""]
    assert raw.headers["X-Vertex-AI-Endpoint-Id"] == "g"
    assert raw.content_type == "application/json"
    with pytest.raises(Unsupported, match="Accept"):
        ep.invoke(b'{"instances": [[3]]}', accept="text/csv")

    ep.promote("v2")
    state = ep.undeploy("v1")
    assert state.version_names == ["v2"]
    assert split_by_name(fake, "g") == {"v2": 100}
    ep.delete()
    backend.wait_deleted("g", timeout=60)
    assert_nothing_left(fake, "g")

    # Every Vertex AI call went through the gRPC front end; only GCS and Logging used REST.
    storage = ("/upload/", "/stor", "/download/")
    vertex = {rpc for _, path, rpc in fake.requests if not path.startswith(storage)}
    assert vertex <= set(front.calls) | {"ListLogEntries"}
    assert {"CreateEndpoint", "DeployModel", "UpdateEndpoint", "UndeployModel"} <= set(front.calls)
    assert front.calls["RawPredict"] == 61  # the refused Accept was never sent
    assert front.calls["Predict"] == 1
    assert {rpc: fake.calls(rpc) for rpc in ("DeployModel", "UploadModel", "RawPredict")} == {
        rpc: front.calls[rpc] for rpc in ("DeployModel", "UploadModel", "RawPredict")
    }


def test_failed_deploy_reports_the_cause_over_grpc(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    ep = Endpoint.create("gfail", versions.echo("v1"), backend=backend)
    with pytest.raises(DeploymentFailed) as caught:
        ep.deploy(versions.broken("v2"), traffic=10, timeout=60)
    reason = caught.value.reason
    assert "Model server never became ready" in reason  # the operation's error (code 9)
    assert "cannot load weights" in reason  # the container's log, from Cloud Logging (REST)
    assert "removed" in reason
    assert split_by_name(fake, "gfail") == {"v1": 100}
    assert list(fake.models["gfail"]) == ["1"]
    assert ep.predict([[1.0]]).predictions == ["v1"]


def test_faults_are_retried_and_mapped_over_grpc(
    fake: VertexFake, front: VertexGrpcFake, backend: VertexBackend, versions: Versions
) -> None:
    fake.inject("GetEndpoint", 503, times=2)
    fake.inject("UploadModel", 429)
    fake.inject("DeployModel", 503)
    ep = Endpoint.create("gretry", versions.echo("v1"), backend=backend, sleep=lambda _: None)
    assert split_by_name(fake, "gretry") == {"v1": 100}
    assert front.calls["UploadModel"] == 2
    assert front.calls["DeployModel"] == 2

    fake.inject("RawPredict", 429)
    fake.inject("RawPredict", 503)
    before = front.calls["RawPredict"]
    assert ep.predict([[1.0]]).predictions == ["v1"]
    assert front.calls["RawPredict"] == before + 3

    # A deploy whose answer is lost (it took effect) is found again, not deployed twice.
    fake.inject("DeployModel", 503, after=True)
    ep.deploy(versions.echo("v2"), traffic=0)
    assert front.calls["DeployModel"] == 3
    assert len(fake.endpoints["gretry"]["deployedModels"]) == 2

    fake.inject("RawPredict", 400, message="Invalid instances.")
    with pytest.raises(ValidationError, match="Invalid instances") as caught:
        ep.predict([[1.0]])
    assert caught.value.provider_code == "INVALID_ARGUMENT"

    with pytest.raises(NotFound, match="not found"):
        backend.get("gnever")
    with pytest.raises(NotFound):
        backend.invoke(InvokeRequest("gnever", b"{}"))
    with pytest.raises(AlreadyExists):
        backend.create("gretry", versions.echo("v1"))


def test_grpc_errors_match_rest_errors(fake: VertexFake, front: VertexGrpcFake) -> None:
    """Each refusal reaches google.api_core with the same message over both transports, and
    gRPC's exception class is REST's or a more precise subclass of it (409 -> AlreadyExists,
    400 -> FailedPrecondition: gRPC keeps the canonical code that HTTP folds away)."""
    import grpc
    from google.api_core import exceptions as gexc
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1 as v1
    from google.protobuf import field_mask_pb2

    def clients(transport: str) -> tuple[Any, Any, Any]:
        made = []
        for cls in (v1.EndpointServiceClient, v1.ModelServiceClient, v1.PredictionServiceClient):
            if transport == "rest":
                made.append(
                    cls(
                        credentials=AnonymousCredentials(),
                        transport="rest",
                        client_options=ClientOptions(api_endpoint=fake.url),
                    )
                )
            else:
                channel = grpc.insecure_channel(front.target)
                made.append(cls(transport=cls.get_transport_class("grpc")(channel=channel)))
        return made[0], made[1], made[2]

    parent = f"projects/{fake.project}/locations/{fake.location}"
    rest, over_grpc = clients("rest"), clients("grpc")
    rest[0].create_endpoint(
        parent=parent, endpoint=v1.Endpoint(display_name="bare"), endpoint_id="bare"
    ).result()
    bare = f"{parent}/endpoints/bare"

    calls: dict[str, Callable[[tuple[Any, Any, Any]], object]] = {
        "missing endpoint": lambda c: c[0].get_endpoint(name=f"{parent}/endpoints/nope"),
        "missing model version": lambda c: c[1].get_model(name=f"{parent}/models/m@3"),
        "duplicate id": lambda c: c[0].create_endpoint(
            parent=parent, endpoint=v1.Endpoint(display_name="bare"), endpoint_id="bare"
        ),
        "unknown split key": lambda c: c[0].update_endpoint(
            endpoint=v1.Endpoint(name=bare, traffic_split={"42": 100}),
            update_mask=field_mask_pb2.FieldMask(paths=["traffic_split"]),
        ),
        "no traffic split": lambda c: c[2].predict(endpoint=bare, instances=[]),
        "throttled": lambda c: (fake.inject("GetEndpoint", 429), c[0].get_endpoint(name=bare)),
        "unavailable": lambda c: (
            fake.inject("ListEndpoints", 503),
            list(c[0].list_endpoints(parent=parent, retry=None)),
        ),
    }
    expected = {
        "missing endpoint": gexc.NotFound,
        "missing model version": gexc.NotFound,
        "duplicate id": gexc.AlreadyExists,
        "unknown split key": gexc.InvalidArgument,
        "no traffic split": gexc.FailedPrecondition,
        "throttled": gexc.ResourceExhausted,
        "unavailable": gexc.ServiceUnavailable,
    }
    try:
        for case, call in calls.items():
            seen = []
            for client in (rest, over_grpc):
                with pytest.raises(gexc.GoogleAPICallError) as caught:
                    call(client)
                seen.append(caught.value)
            by_rest, by_grpc = seen
            assert isinstance(by_grpc, expected[case]), case
            assert isinstance(by_grpc, type(by_rest)), case
            # REST prefixes "VERB URL: " to the envelope's message; gRPC sends the message.
            assert by_grpc.message == by_rest.response.json()["error"]["message"], case
    finally:
        for client in (*rest, *over_grpc):
            client.transport.close()


def test_plaintext_grpc_only_for_a_loopback_emulator_with_anonymous_credentials(
    fake: VertexFake, front: VertexGrpcFake
) -> None:
    from google.oauth2.credentials import Credentials

    assert all(_is_loopback(h) for h in ("127.0.0.1:1", "localhost:2", "[::1]:3", "127.8.0.1"))
    assert not any(_is_loopback(h) for h in ("us-central1-aiplatform.googleapis.com", "10.0.0.1:4"))
    assert not _is_loopback("http://127.0.0.1:5")
    assert not _is_loopback("127.example.com:443")  # a name, not an address

    def plaintext(**settings: Any) -> bool:
        backend = VertexBackend(project="p", **settings)
        try:
            return backend._plaintext_grpc()
        finally:
            backend.close()

    assert plaintext(api_endpoint=front.target, credentials="anonymous")
    assert not plaintext(api_endpoint=front.target, credentials=Credentials(token="t"))
    assert not plaintext(
        api_endpoint="europe-west4-aiplatform.googleapis.com", credentials="anonymous"
    )
    assert not plaintext(api_endpoint=front.target, credentials="anonymous", transport="rest")
    # Plain http:// is REST's; the error says how to reach a gRPC emulator instead.
    with pytest.raises(ValidationError, match="rest") as caught:
        make_backend(fake, transport="grpc")
    assert "127.0.0.1:PORT" in (caught.value.hint or "")
    # The Invoke API of dedicated endpoints is HTTP only: refused before anything is sent.
    dedicated = make_backend(fake, dedicated_endpoint=True, **grpc_settings(fake, front.target))
    try:
        with pytest.raises(Unsupported, match="HTTP only"):
            dedicated.invoke(InvokeRequest("anything", b"{}"))
    finally:
        dedicated.close()
