"""Streaming on Vertex AI: dedicated endpoints stream (Invoke API), shared ones cannot; the fake's
`:streamRawPredict` relays a container's chunks as they come."""

from __future__ import annotations

import httpx
import pytest

from endpointkit import Endpoint
from endpointkit.adapters.vertex import VertexBackend
from endpointkit.errors import ModelError, Timeout, Unsupported
from endpointkit.invocation import EVENT_STREAM, InvokeRequest
from tests.conformance.suite import Versions
from tests.fakes.vertex import VertexFake
from tests.fakes.vertex_support import make_backend
from tests.streams import assert_streamed, body, timed_frames

pytestmark = pytest.mark.slow

GAP = 0.2
SSE = {"accept": "text/event-stream", "content-type": "application/json"}


def test_dedicated_endpoints_stream_and_pin_versions(fake: VertexFake, versions: Versions) -> None:
    backend = make_backend(fake, dedicated_endpoint=True)
    try:
        ep = Endpoint.create("ded", versions.echo("v1"), backend=backend)
        ep.deploy(versions.echo("v2"), traffic=0)
        with ep.invoke_stream(body([1, 2, 3, 4], gap_s=GAP), version="v2") as stream:
            assert stream.version == "v2"
            assert stream.content_type == "text/event-stream"
            frames = timed_frames(stream)
        assert [f["prediction"] for _, f in frames] == ["v2"] * 4
        assert_streamed([t for t, _ in frames], GAP)
        stream = ep.invoke_stream(body([1, "boom"]))
        with pytest.raises(ModelError, match="broke its stream off"):
            stream.read()
        # A model that goes quiet mid-stream is a timeout, not a broken stream.
        stream = ep.invoke_stream(body([1, 2], gap_s=2.0), timeout=0.5)
        with pytest.raises(Timeout, match=r"sent nothing for 0\.5 s mid-stream"):
            stream.read()
        with pytest.raises(Unsupported, match="custom attributes"):
            ep.invoke_stream(body([1]), custom_attributes="a=1")
    finally:
        backend.close()


def test_shared_endpoints_cannot_stream(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    ep = Endpoint.create("shared", versions.echo("v1"), backend=backend)
    with pytest.raises(Unsupported, match="vertex") as caught:
        ep.invoke_stream(body([1]))
    assert "dedicated" in (caught.value.hint or "")
    dedicated = make_backend(fake, dedicated_endpoint=True)
    try:  # a dedicated-endpoint backend meeting a shared endpoint refuses before sending
        with pytest.raises(Unsupported, match="shared public endpoint"):
            dedicated.invoke_stream(InvokeRequest("shared", body([1]), accept=EVENT_STREAM))
    finally:
        dedicated.close()
    url = f"{fake.url}/v1/{backend._endpoint_path('shared')}:streamRawPredict"
    answer = httpx.post(url, content=body([1]), headers=SSE, timeout=30)
    assert answer.status_code == 400
    assert answer.json()["error"]["status"] == "FAILED_PRECONDITION"


def test_fake_stream_raw_predict_relays_chunks_on_dedicated_endpoints(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    # A predict-route Model on an endpoint the fake then treats as dedicated (endpointkit's own
    # dedicated Models use the Invoke API instead).
    Endpoint.create("psc", versions.echo("v1"), backend=backend)
    fake.endpoints["psc"]["dedicatedEndpointEnabled"] = True
    url = f"{fake.url}/v1/{backend._endpoint_path('psc')}:streamRawPredict"
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", url, content=body([1, 2, 3, 4], gap_s=GAP), headers=SSE) as answer,
    ):
        assert answer.status_code == 200
        assert answer.headers["x-vertex-ai-deployed-model-id"]
        frames = timed_frames(answer.iter_raw())
    assert len(frames) == 4
    assert_streamed([t for t, _ in frames], GAP)
