"""Streaming through the local gateway: each front door relays a version's chunks unbuffered."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from botocore.exceptions import EventStreamError

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from endpointkit.errors import ModelError
from tests.conformance.suite import Versions
from tests.local.test_protocols import sagemaker_runtime
from tests.streams import assert_streamed, body, timed_frames

pytestmark = pytest.mark.slow  # real processes and sockets

GAP = 0.2


def parts(events: Iterator[dict[str, object]]) -> Iterator[bytes]:
    for event in events:
        yield event["PayloadPart"]["Bytes"]  # type: ignore[index]


def test_boto3_response_stream_through_the_gateway(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.echo("v2"), traffic={"v1": 100, "v2": 0})
    client = sagemaker_runtime(local.gateway_url())
    answer = client.invoke_endpoint_with_response_stream(  # type: ignore[attr-defined]
        EndpointName=ep.name,
        Body=body([1, 2, 3, 4], gap_s=GAP),
        ContentType="application/json",
        Accept="text/event-stream",
        TargetVariant="v2",
    )
    assert answer["InvokedProductionVariant"] == "v2"
    assert answer["ContentType"] == "text/event-stream"
    frames = timed_frames(parts(answer["Body"]))
    assert [f["prediction"] for _, f in frames] == ["v2"] * 4
    assert_streamed([t for t, _ in frames], GAP)
    # A stream the version breaks off ends with SageMaker's ModelStreamError event.
    broken = client.invoke_endpoint_with_response_stream(  # type: ignore[attr-defined]
        EndpointName=ep.name, Body=body([1, "boom"]), Accept="text/event-stream"
    )
    with pytest.raises(EventStreamError, match="ModelStreamError"):
        list(parts(broken["Body"]))


def test_vertex_stream_raw_predict_and_plain_paths(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    base = local.gateway_url()
    urls = {
        f"{base}/v1/projects/p/locations/l/endpoints/{ep.name}:streamRawPredict": "v1",
        f"{base}/endpoints/{ep.name}/predict-stream": "v1",
    }
    with httpx.Client(timeout=30) as client:
        for url in urls:
            with client.stream(
                "POST",
                url,
                content=body([1, 2, 3, 4], gap_s=GAP),
                headers={"accept": "text/event-stream", "content-type": "application/json"},
            ) as answer:
                assert answer.status_code == 200
                assert answer.headers["x-endpointkit-version"] == "v1"
                assert "content-length" not in answer.headers
                frames = timed_frames(answer.iter_raw())
            assert len(frames) == 4
            assert_streamed([t for t, _ in frames], GAP)
        vertex = next(iter(urls))
        answer = client.post(vertex, content=body([1]), headers={"accept": "text/event-stream"})
        assert answer.headers["x-vertex-ai-deployed-model-id"] == "v1"
        # Errors keep each front door's own shape.
        missing = client.post(vertex.replace(ep.name, "nope"), content=body([1]))
        assert missing.status_code == 404
        assert missing.json()["error"]["status"] == "NOT_FOUND"
        # The non-streaming paths still answer whole, with a length.
        whole = client.post(f"{base}/endpoints/{ep.name}/predict", content=body([[1.0]]))
        assert whole.headers["content-length"] == str(len(whole.content))


def test_broken_stream_and_early_hang_up_leave_the_gateway_serving(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    stream = ep.invoke_stream(body([1, "boom"]))
    assert b'"index":0' in next(stream)
    with pytest.raises(ModelError, match="broke its stream off"):
        list(stream)
    with ep.invoke_stream(body(list(range(50)), gap_s=0.05)) as early:
        next(early)  # then hang up mid-stream
    deadline = time.monotonic() + 10
    while local.gateway_status()["endpoints"][ep.name]["versions"]["v1"]["inflight"]:
        assert time.monotonic() < deadline, "the gateway still counts the abandoned stream"
        time.sleep(0.05)
    assert ep.predict([[1.0]]).predictions == ["v1"]
