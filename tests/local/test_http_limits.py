"""The gateway's own HTTP server against hostile or broken clients: oversized heads and
bodies, slow requests, aborted uploads. Served in process on a loopback socket, raw sockets
as clients."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from endpointkit.adapters.local._http import server as http_server
from endpointkit.adapters.local._http.server import MAX_BODY, MAX_HEADER_BYTES, HttpServer
from endpointkit.serving.types import Headers


class Served:
    """An HttpServer on its own event loop thread; `port`, and `server` to inspect."""

    def __init__(self, body_timeout: float) -> None:
        self.loop = asyncio.new_event_loop()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

        async def handler(
            method: str, path: str, query: bytes, headers: Headers, body: bytes
        ) -> tuple[int, Headers, bytes]:
            return 200, [(b"content-type", b"text/plain")], b"%d" % len(body)

        self.server = HttpServer(handler, body_timeout=body_timeout)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(self.sock), self.loop).result(5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.shutdown(1), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
        self.sock.close()


@pytest.fixture
def served() -> Iterator[Served]:
    server = Served(body_timeout=0.5)
    try:
        yield server
    finally:
        server.stop()


def connect(served: Served) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    return sock


def answer(sock: socket.socket) -> bytes:
    """What the server sends until it closes (bounded by the socket's timeout)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def test_a_small_request_is_answered(served: Served) -> None:
    with connect(served) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\nabc")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(served: Served) -> None:
    with connect(served) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: %d\r\n\r\n" % (MAX_BODY + 1))
        assert answer(sock).startswith(b"HTTP/1.1 413")
        assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "sent",
    [
        b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\nabc",  # slow body
        b"POST /x HTTP/1.1\r\nhost: a\r\n",  # slow head
    ],
)
def test_a_request_that_does_not_arrive_in_time_gets_408(served: Served, sent: bytes) -> None:
    with connect(served) as sock:
        sock.sendall(sent)
        started = time.monotonic()
        assert answer(sock).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started < 3
    assert served.server.buffered == 0


@pytest.mark.parametrize(
    "head",
    [
        b"".join(b"x-h%d: v\r\n" % i for i in range(101)),  # too many
        b"x-big: " + b"v" * (MAX_HEADER_BYTES + 1) + b"\r\n",  # one too large
        b"x-huge: " + b"v" * (4 * 1024 * 1024),  # never ends: refused before it does
    ],
)
def test_headers_over_the_limits_get_431(served: Served, head: bytes) -> None:
    with connect(served) as sock:
        # closed once the limit was passed (the answer was sent first)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET /x HTTP/1.1\r\nhost: a\r\n" + head + b"\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 431")


def test_bodies_held_at_once_are_bounded_and_freed_on_abort(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_server, "MAX_BUFFERED", 1_000_000)
    first = connect(served)
    first.sendall(b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 600000\r\n\r\n")
    first.sendall(b"v" * 500_000)
    deadline = time.monotonic() + 5
    while served.server.buffered < 500_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert served.server.buffered == 500_000
    with connect(served) as second:
        second.sendall(b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 600000\r\n\r\n")
        reply = answer(second)
        assert reply.startswith(b"HTTP/1.1 503")
        assert b"retry-after: 1" in reply.lower()
    first.close()  # an aborted upload: what it held is freed at once
    deadline = time.monotonic() + 5
    while served.server.buffered and time.monotonic() < deadline:
        time.sleep(0.01)
    assert served.server.buffered == 0
    with connect(served) as third:  # and the budget is free again
        third.sendall(b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 600000\r\n\r\n")
        third.sendall(b"v" * 600_000)
        assert third.recv(4096).startswith(b"HTTP/1.1 200")
    assert served.server.buffered == 0


def _read_answers(sock: socket.socket, count: int) -> list[bytes]:
    """`count` whole answers (this server's: content-length bodies), in the order they came."""
    data, answers = b"", []
    while len(answers) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            length = int(data.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            end = head_end + 4 + length
            if len(data) >= end:
                answers.append(data[:end])
                data = data[end:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(answers)} answers"
        data += chunk
    return answers


def test_a_kept_alive_connection_answers_in_order_and_leaves_nothing_when_it_goes(
    served: Served,
) -> None:
    """One connection, sequential then pipelined requests: each answered, in order; once the
    client goes, the connection and its task are gone (a connection's task waits between
    requests instead of one task per request)."""

    def request(size: int) -> bytes:
        return b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: %d\r\n\r\n%s" % (size, b"x" * size)

    async def tasks() -> int:
        return len(asyncio.all_tasks()) - 1  # not this one

    def pending() -> int:
        return asyncio.run_coroutine_threadsafe(tasks(), served.loop).result(5)

    with connect(served) as sock:
        for size in (1, 22, 333):
            sock.sendall(request(size))
            (got,) = _read_answers(sock, 1)
            assert got.startswith(b"HTTP/1.1 200")
            assert got.endswith(b"%d" % size)
        sock.sendall(request(4) + request(55) + request(666))
        bodies = [a.rsplit(b"\r\n\r\n", 1)[1] for a in _read_answers(sock, 3)]
        assert bodies == [b"4", b"55", b"666"]
    deadline = time.monotonic() + 5
    while (served.server.connections or pending()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not served.server.connections
    assert pending() == 0
