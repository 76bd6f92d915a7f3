"""invoke_stream's contract: StreamResult, validation, the mock backend, the async twin, the CLI."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from endpointkit import AsyncEndpoint, Endpoint
from endpointkit.adapters.base import Capability
from endpointkit.adapters.mock import MockBackend
from endpointkit.adapters.registry import override_backends
from endpointkit.cli import main
from endpointkit.errors import ModelError, PayloadTooLarge, Throttled, Unsupported
from endpointkit.invocation import EVENT_STREAM, AsyncStreamResult, InvokeRequest, StreamResult
from tests.streams import assert_streamed, body, timed_frames


def ticking(instances: list[Any]) -> Iterator[dict[str, Any]]:
    """A handler that streams: one item per instance, 0.1 s apart; "boom" fails."""
    for index, item in enumerate(instances):
        if index:
            time.sleep(0.1)
        if item == "boom":
            raise RuntimeError("exploded")
        yield {"index": index, "item": item}


@pytest.fixture
def mock() -> MockBackend:
    backend = MockBackend(seed=1)
    backend.add_endpoint("chat", {"v1": ticking, "v2": lambda rows: [len(rows)] * len(rows)})
    return backend


def test_stream_result_iterates_and_closes_once() -> None:
    closed: list[str] = []

    def chunks() -> Iterator[bytes]:
        try:
            yield b"a"
            yield b"b"
        finally:
            closed.append("generator")

    result = StreamResult(
        chunks(), content_type="text/plain", version="v1", on_close=lambda: closed.append("conn")
    )
    assert (result.version, result.content_type, result.closed) == ("v1", "text/plain", False)
    with result as stream:
        assert next(stream) == b"a"
    assert result.closed
    assert closed == ["generator", "conn"]
    assert list(result) == []  # nothing more after close
    result.close()
    assert closed == ["generator", "conn"]
    whole = StreamResult(iter([b"x", b"y"]), content_type="text/plain")
    assert whole.read() == b"xy"
    assert whole.closed  # read to the end


def test_stream_result_closes_on_a_failure() -> None:
    def failing() -> Iterator[bytes]:
        yield b"a"
        raise ValueError("broken")

    closed: list[bool] = []
    result = StreamResult(failing(), content_type="x", on_close=lambda: closed.append(True))
    assert next(result) == b"a"
    with pytest.raises(ValueError, match="broken"):
        next(result)
    assert result.closed
    assert closed == [True]


def test_async_stream_result_wraps_a_sync_one() -> None:
    closed: list[bool] = []
    sync = StreamResult(
        iter([b"1", b"2", b"3"]),
        content_type="text/event-stream",
        version="v2",
        on_close=lambda: closed.append(True),
    )

    async def scenario() -> list[bytes]:
        result = AsyncStreamResult.from_sync(sync)
        assert result.version == "v2"
        async with result:
            return [chunk async for chunk in result]

    assert asyncio.run(scenario()) == [b"1", b"2", b"3"]
    assert closed == [True]


def test_mock_streams_a_generator_handler_as_it_runs(mock: MockBackend) -> None:
    ep = Endpoint("chat", mock)
    with ep.invoke_stream(body(["a", "b", "c", "d"])) as stream:
        assert stream.version == "v1"
        assert stream.content_type == "text/event-stream"
        frames = timed_frames(stream)
    assert [f["item"] for _, f in frames] == ["a", "b", "c", "d"]
    assert_streamed([t for t, _ in frames], 0.1)
    call = mock.calls_to("chat")[-1]
    assert (call.version, call.accept, call.status) == ("v1", "text/event-stream", 200)
    lines = ep.invoke_stream(body(["a"]), accept="application/jsonlines").read()
    assert lines == b'{"index":0,"item":"a"}\n'
    # A non-streaming Accept gets the whole answer; a plain handler streams it in one piece.
    assert json.loads(ep.invoke_stream(body(["a", "b"]), accept=None).read()) == {
        "predictions": [{"index": 0, "item": "a"}, {"index": 1, "item": "b"}]
    }
    assert ep.invoke_stream(body([1, 2]), version="v2").read() == b'data: {"predictions":[2,2]}\n\n'


def test_mock_failures(mock: MockBackend) -> None:
    ep = Endpoint("chat", mock, sleep=lambda _: None)
    stream = ep.invoke_stream(body(["a", "boom"]))
    assert next(stream).startswith(b"data: ")
    with pytest.raises(ModelError, match="while streaming") as caught:
        next(stream)
    assert caught.value.status == 500
    assert caught.value.operation == "invoke_stream"
    assert stream.closed
    # Throttling before the stream starts is retried; after that, nothing is.
    fault = mock.inject("throttle", times=2)
    assert ep.invoke_stream(body(["a"])).read() == b'data: {"index":0,"item":"a"}\n\n'
    assert fault.fired == 2
    mock.inject("throttle", times=5)
    with pytest.raises(Throttled):
        ep.invoke_stream(body(["a"]))


def test_invoke_stream_is_validated_before_anything_is_sent(mock: MockBackend) -> None:
    class NoStreams(MockBackend):
        name: ClassVar[str] = "nostreams"
        capabilities = MockBackend.capabilities - {
            Capability.STREAMING,
            Capability.TARGET_VERSION,
        }

    plain = NoStreams()
    plain.add_endpoint("chat", {"v1": ticking})
    with pytest.raises(Unsupported, match="nostreams") as caught:
        plain.invoke_stream(InvokeRequest("chat", body(["a"]), accept=EVENT_STREAM))
    assert caught.value.operation == "invoke_stream"
    assert "streaming" in str(caught.value)
    assert not plain.calls
    with pytest.raises(PayloadTooLarge):
        mock.invoke_stream(InvokeRequest("chat", b"x" * (7 * 1024 * 1024)))
    assert not mock.calls


def test_async_endpoint_streams(mock: MockBackend) -> None:
    async def scenario() -> tuple[str | None, list[bytes]]:
        ep = AsyncEndpoint("chat", mock)
        stream = await ep.invoke_stream(body(["a", "b"]))
        async with stream:
            return stream.version, [chunk async for chunk in stream]

    version, chunks = asyncio.run(scenario())
    assert version == "v1"
    assert b"".join(chunks).count(b"data: ") == 2


def test_cli_invoke_stream_prints_chunks(
    mock: MockBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    with override_backends(mock):
        assert main(["invoke", "chat", "--instances", '["a", "b"]', "--stream"]) == 0
        captured = capsys.readouterr()
        assert captured.out.count("data: ") == 2
        assert "(served by v1)" in captured.err
        argv = ["invoke", "chat", "--instances", '["a"]', "--stream", "--output", "json"]
        assert main(argv) == 0
        line = json.loads(capsys.readouterr().out.splitlines()[0])
        assert line == {"version": "v1", "chunk": 'data: {"index":0,"item":"a"}\n\n'}


def test_an_async_read_that_times_out_raises_the_timeout_and_closes_later() -> None:
    """A timeout while a chunk is being read in its thread is a timeout for the caller (not
    "generator already executing"), and the stream is still closed once that read ends."""
    closed: list[str] = []

    def slow() -> Iterator[bytes]:
        try:
            yield b"first"
            time.sleep(0.3)
            yield b"late"
        finally:
            closed.append("generator")

    result = StreamResult(slow(), content_type="text/plain", on_close=lambda: closed.append("conn"))

    async def scenario() -> bytes:
        stream = AsyncStreamResult.from_sync(result)
        first = await stream.__anext__()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.__anext__(), 0.05)
        assert stream.closed
        assert closed == ["conn"]  # the connection went at once; the read was still running
        await asyncio.sleep(0.5)
        return first

    assert asyncio.run(scenario()) == b"first"
    assert closed == ["conn", "generator"]
