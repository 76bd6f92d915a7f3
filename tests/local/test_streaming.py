"""Streaming through the local gateway: each front door relays a version's chunks unbuffered."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from botocore.exceptions import EventStreamError

from endpointkit import Endpoint, VersionSpec
from endpointkit.adapters.local import LocalBackend
from endpointkit.adapters.local.gateway import Gateway, Router
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


# A predictor that takes its time before the first item (`first_s`) and between items
# (`gap_s`): both are request parameters.
LATE_PREDICTOR = """
import time


class Late:
    def load(self, model_dir):
        pass

    def predict(self, instances, parameters=None):
        return ["late" for _ in instances]

    def predict_stream(self, instances, parameters=None):
        parameters = parameters or {}
        time.sleep(float(parameters.get("first_s", 0)))
        for index, _ in enumerate(instances):
            if index:
                time.sleep(float(parameters.get("gap_s", 0)))
            yield {"index": index, "prediction": "late"}
"""

# Each streaming front door: its path, and the headers that ask for a stream from version "late".
STREAM_PATHS = {
    "sagemaker": (
        "/endpoints/{}/invocations-response-stream",
        {"x-amzn-sagemaker-accept": "text/event-stream", "x-amzn-sagemaker-target-variant": "late"},
    ),
    "vertex": (
        "/v1/projects/p/locations/l/endpoints/{}:streamRawPredict",
        {"accept": "text/event-stream", "x-vertex-ai-deployed-model-id": "late"},
    ),
    "plain": (
        "/endpoints/{}/predict-stream",
        {"accept": "text/event-stream", "x-endpointkit-version": "late"},
    ),
}


def late_version(root: Path) -> VersionSpec:
    model_dir = root / "late"
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "late_predictor.py").write_text(LATE_PREDICTOR)
    return VersionSpec(name="late", model=str(model_dir), predictor="late_predictor:Late")


def inflight(local: LocalBackend, endpoint: str, version: str = "late") -> int:
    count: int = local.gateway_status()["endpoints"][endpoint]["versions"][version]["inflight"]
    return count


def wait_inflight(local: LocalBackend, endpoint: str, count: int, limit: float) -> float:
    """Seconds until the gateway counts `count` requests in flight on version "late"."""
    start = time.monotonic()
    while inflight(local, endpoint) != count:
        assert time.monotonic() - start < limit, (
            f"the gateway still counts {inflight(local, endpoint)} request(s) in flight on "
            f"'late' after {limit:g} s (expected {count})"
        )
        time.sleep(0.02)
    return time.monotonic() - start


def raw_request(url: str, path: str, headers: dict[str, str], payload: bytes) -> socket.socket:
    """Send one request on a socket of its own and return the socket (the caller hangs up)."""
    address = urlsplit(url)
    assert address.hostname is not None
    assert address.port is not None
    sock = socket.create_connection((address.hostname, address.port), timeout=10)
    head = [f"POST {path} HTTP/1.1", f"host: {address.netloc}", f"content-length: {len(payload)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
    return sock


@pytest.mark.parametrize("door", sorted(STREAM_PATHS))
def test_client_gone_before_the_first_chunk_releases_the_version(
    door: str,
    make_endpoint: Callable[..., Endpoint],
    versions: Versions,
    local: LocalBackend,
    tmp_path: Path,
) -> None:
    """The client hangs up while the version is still producing its first item: the gateway
    must close the version's stream when the answer comes, so draining does not wait for it."""
    ep = make_endpoint(versions.echo("v1"), late_version(tmp_path), traffic={"v1": 100})
    path, headers = STREAM_PATHS[door]
    headers = {**headers, "content-type": "application/json"}
    sock = raw_request(local.gateway_url(), path.format(ep.name), headers, body([1, 2], first_s=1))
    try:
        wait_inflight(local, ep.name, 1, limit=10)  # the version holds it
    finally:
        sock.close()  # before the first chunk (the version sleeps 1 s)
    wait_inflight(local, ep.name, 0, limit=8)
    start = time.monotonic()
    ep.undeploy("late", timeout=60)
    assert time.monotonic() - start < 8, "undeploy waited for an abandoned stream"
    assert ep.predict([[1.0]]).predictions == ["v1"]


def test_client_gone_mid_stream_releases_the_version_without_waiting_for_the_next_chunk(
    make_endpoint: Callable[..., Endpoint],
    versions: Versions,
    local: LocalBackend,
    tmp_path: Path,
) -> None:
    ep = make_endpoint(versions.echo("v1"), late_version(tmp_path), traffic={"v1": 100})
    for door, (path, headers) in sorted(STREAM_PATHS.items()):
        headers = {**headers, "content-type": "application/json"}
        payload = body([1, 2], gap_s=3)
        sock = raw_request(local.gateway_url(), path.format(ep.name), headers, payload)
        try:
            received = b""
            while b'"index"' not in received:  # the first chunk came
                data = sock.recv(65536)
                assert data, f"{door}: the gateway closed the stream: {received!r}"
                received += data
        finally:
            sock.close()  # the version now sleeps 3 s before its next item
        wait_inflight(local, ep.name, 0, limit=2)


@pytest.mark.parametrize("door", sorted(STREAM_PATHS))
def test_asgi_entry_closes_the_stream_when_sending_fails(
    door: str,
    make_endpoint: Callable[..., Endpoint],
    versions: Versions,
    local: LocalBackend,
    tmp_path: Path,
) -> None:
    """The gateway as an ASGI app (in process, in front of a real version process): a server
    that cannot send the answer (its client is gone) must not leave the version's stream open."""
    ep = make_endpoint(versions.echo("v1"), late_version(tmp_path), traffic={"v1": 100})
    address = local.gateway_status()["endpoints"][ep.name]["versions"]["late"]["address"]
    router = Router()
    route = router.route(ep.name)
    route.traffic = [("late", 100)]
    upstream = route.upstream("late")
    upstream.set_port(address)
    upstream.healthy = True
    gateway = Gateway(router, secret="test")
    path, headers = STREAM_PATHS[door]
    headers = {**headers, "content-type": "application/json"}
    scope = {
        "type": "http",
        "method": "POST",
        "path": path.format(ep.name),
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body([1, 2, 3])}

    async def send(message: dict[str, object]) -> None:
        raise OSError("the client is gone")  # as a server does when its peer has left

    with pytest.raises(OSError, match="the client is gone"):
        asyncio.run(gateway(scope, receive, send))
    assert upstream.inflight == 0
    assert upstream.pool is not None
    upstream.pool.close()
