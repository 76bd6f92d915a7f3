"""InvokeEndpointWithResponseStream through boto3, the fake runtime and real serving processes."""

from __future__ import annotations

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.sagemaker import SageMakerBackend
from endpointkit.errors import ModelError, NotFound
from endpointkit.invocation import EVENT_STREAM, InvokeRequest, StreamResult
from tests.conformance.suite import Versions
from tests.streams import assert_streamed, body, timed_frames

pytestmark = pytest.mark.slow

GAP = 0.2


def test_payload_parts_arrive_as_the_model_makes_them(
    backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    ep.deploy(versions.echo("v2"), traffic=0, timeout=60)
    stream = backend.invoke_stream(
        InvokeRequest(
            name,
            body([1, 2, 3, 4], gap_s=GAP),
            accept=EVENT_STREAM,
            version="v2",
            inference_id="req-7",
            custom_attributes="trace=1",
        )
    )
    assert isinstance(stream, StreamResult)
    with stream:
        assert stream.version == "v2"
        assert stream.content_type == "text/event-stream"
        assert stream.headers["x-amzn-invoked-production-variant"] == "v2"
        frames = timed_frames(stream)  # the fake cuts events into 8-byte parts
    assert [f["prediction"] for _, f in frames] == ["v2"] * 4
    assert_streamed([t for t, _ in frames], GAP)
    with pytest.raises(NotFound, match="v9"):
        ep.invoke_stream(body([1]), version="v9")


def test_a_stream_broken_off_by_the_model_raises_model_error(
    backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    stream = backend.invoke_stream(InvokeRequest(name, body([1, 2, "boom"]), accept=EVENT_STREAM))
    with pytest.raises(ModelError, match="while streaming") as caught:
        stream.read()
    assert caught.value.provider_code == "ModelStreamError"
    assert caught.value.operation == "invoke_stream"
    assert stream.closed
