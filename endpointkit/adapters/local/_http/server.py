"""A small HTTP/1.1 server on asyncio protocols and httptools, for the gateway only.

Measured on the 2-core dev machine: uvicorn's ASGI cycle costs about 110 us a request more
than a bare protocol (169 vs 56 us p50 for a constant answer), which is most of what the
gateway adds in front of a version server; so the daemon serves its handler directly.
Keep-alive and pipelining (answered in order), `Expect: 100-continue`, and graceful close:
`shutdown()` stops accepting and waits for requests in flight.

Hostile or broken clients are bounded: a head over MAX_HEADER_BYTES or MAX_HEADERS gets 431;
a declared Content-Length over MAX_BODY gets 413 before any of the body is read; a request
still incomplete BODY_TIMEOUT_S after its first byte gets 408; all connections together hold
at most MAX_BUFFERED bytes of request bodies (beyond it, 503 with Retry-After); and a
connection that goes away frees what it held at once. The timer is armed only for a request
that does not arrive in one read, so the usual small request costs nothing extra. A handler may
answer with an async iterator of chunks instead of bytes: it is sent with chunked transfer
encoding as the chunks come, and a failure mid-stream closes the connection without the last
chunk, so the client sees a broken answer rather than a short one.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import httptools

from endpointkit.retry import apoll_until
from endpointkit.serving.allocator import trim_heap
from endpointkit.serving.types import Headers, Receive, Scope, Send

__all__ = [
    "BODY_TIMEOUT_S",
    "MAX_BODY",
    "MAX_BUFFERED",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "HttpServer",
    "drained",
    "serve_asgi",
]

Body = bytes | AsyncIterator[bytes]
Handler = Callable[[str, str, bytes, Headers, bytes], Awaitable[tuple[int, Headers, Body]]]
MAX_BODY = 64 * 1024 * 1024  # one request's body
MAX_BUFFERED = 256 * 1024 * 1024  # request bodies held by all connections together
MAX_HEADER_BYTES = 64 * 1024  # a request's head: URL, names and values (the server's limit)
MAX_HEADERS = 100
BODY_TIMEOUT_S = 30.0  # from a request's first byte to its last
_STATUS_LINES = {
    int(s): f"HTTP/1.1 {int(s)} {s.phrase}\r\n".encode()
    for s in http.HTTPStatus.__members__.values()
}


def _status_line(status: int) -> bytes:
    return _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode()


#: An aborted upload at least this large gives its memory back to the OS when freed.
TRIM_AFTER = 8 * 1024 * 1024


class _Connection(asyncio.Protocol):
    """One client connection: parse requests, run the handler, write answers in order."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: Headers = []
        self.body: list[bytes] = []
        self.size = 0
        self.head_size = 0  # bytes of the current request's head (URL, names, values)
        self.in_head = False  # between the current request's first byte and its headers' end
        self.in_message = False  # between its first byte and its last
        self.timer: asyncio.TimerHandle | None = None  # BODY_TIMEOUT_S for a partial request
        self.held = 0  # body bytes this connection holds (partial, queued or being handled)
        self.queue: list[tuple[str, bytes, Headers, bytes, bool]] = []
        self.busy = False
        self.wakeup: asyncio.Future[None] | None = None  # set while the task waits for a request
        self.paused = False  # reading paused: too many pipelined requests queued
        self.closing = False
        self.drained: asyncio.Future[None] | None = None  # set while writing is paused
        self.streaming: asyncio.Task[None] | None = None  # the task relaying a streamed answer

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods
        self.transport = cast(asyncio.Transport, transport)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closing = True
        self.transport = None
        self._disarm()
        # Free what an aborted upload or a pipelined queue held, now rather than with us.
        self.body = []
        self.queue.clear()
        self.server.buffered -= self.held
        if self.held >= TRIM_AFTER:
            trim_heap()  # hand the freed body back to the OS, not just to the allocator
        self.held = 0
        self.resume_writing()  # a stream waiting for the client to read must not hang
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)  # the connection's task ends
        if self.streaming is not None:
            # A stream waiting for its next chunk would only notice with that chunk (or its
            # timeout); stop it now, so the version's stream closes and stops counting.
            self.streaming.cancel()

    def pause_writing(self) -> None:
        self.drained = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        self.drained = None

    def data_received(self, data: bytes) -> None:
        was_in_head = self.in_head
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, b"upgrades are not supported")
            return
        except httptools.HttpParserError:
            if not self.closing:
                self._reject(400, b"malformed HTTP request")
            return
        if self.in_message and not self.closing:
            if was_in_head and self.in_head:
                # all of `data` belongs to a head still incomplete: httptools holds a header
                # in pieces until it ends, so count here, not only in on_header
                self.head_size += len(data)
                if self.head_size > MAX_HEADER_BYTES:
                    self._too_large_head()
                    return
            if self.timer is None:
                self.timer = self.loop.call_later(self.server.body_timeout, self._timed_out)

    # -- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.body = []
        self.size = 0
        self.head_size = 0
        self.in_head = self.in_message = True

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.closing:
            return
        self.headers.append((name.lower(), value))
        self.head_size += len(name) + len(value)
        if len(self.headers) > MAX_HEADERS or self.head_size > MAX_HEADER_BYTES:
            self._too_large_head()

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.closing:
            return
        declared = None
        expect = False
        for name, value in self.headers:
            if name == b"content-length":
                declared = int(value) if value.isdigit() else None
            elif name == b"expect":
                expect = expect or value.lower() == b"100-continue"
        if declared is not None and declared > MAX_BODY:
            # answered before any of the body is read: the client need not send it
            self._reject(
                413,
                b"request body of %d bytes is over the gateway's limit of %d bytes"
                % (declared, MAX_BODY),
            )
            return
        if declared is not None and self.server.buffered + declared > MAX_BUFFERED:
            self._busy()
            return
        if expect and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self.closing:
            return
        size = len(body)
        self.size += size
        if self.size > MAX_BODY:
            self._reject(413, b"request body is over the gateway's limit of %d bytes" % MAX_BODY)
            return
        server = self.server
        if server.buffered + size > MAX_BUFFERED:
            self._busy()
            return
        server.buffered += size
        self.held += size
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self._disarm()
        if self.closing:
            return
        method = self.parser.get_method().decode("latin-1")
        keep_alive = self.parser.should_keep_alive()
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.queue.append((method, self.url, self.headers, body, keep_alive))
        if not self.busy:
            self.busy = True
            wakeup = self.wakeup
            if wakeup is not None:  # the connection's task waits for a request
                self.wakeup = None
                wakeup.set_result(None)
            else:
                self.loop.create_task(self._run())
        if len(self.queue) > 32 and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()  # a client pipelining without reading answers

    # -- answering --------------------------------------------------------------------------

    async def _run(self) -> None:
        """Answer the queued requests in order, then wait for the next one: one task for the
        connection's life, not one per request (a task costs about 1 us more than a wakeup)."""
        server = self.server
        try:
            while True:
                while self.queue and not self.closing:
                    method, url, headers, body, keep_alive = self.queue.pop(0)
                    path, _, query = url.partition(b"?")
                    server.in_flight += 1
                    try:
                        status, out_headers, out = await server.handler(
                            method, path.decode("latin-1"), query, headers, body
                        )
                    except Exception as exc:  # a bug: answer 500 and keep serving
                        status, out_headers = 500, [(b"content-type", b"application/json")]
                        out = f'{{"error":"gateway error: {type(exc).__name__}"}}'.encode()
                    finally:
                        server.in_flight -= 1
                        self._release(len(body))
                        del body  # the handler's answer no longer needs it
                    keep_alive = keep_alive and not server.stopping
                    if type(out) is bytes:
                        self._write(status, out_headers, out, keep_alive, method == "HEAD")
                    else:
                        server.in_flight += 1
                        try:
                            keep_alive = await self._stream(
                                status, out_headers, cast(AsyncIterator[bytes], out), keep_alive
                            )
                        finally:
                            server.in_flight -= 1
                    if not keep_alive:
                        self._close()
                        return
                    if self.paused and self.transport is not None and len(self.queue) <= 32:
                        self.paused = False
                        self.transport.resume_reading()
                if self.closing or self.transport is None:
                    return
                self.busy = False
                self.wakeup = self.loop.create_future()
                await self.wakeup
        finally:
            self.busy = False
            self.wakeup = None

    def _write(
        self, status: int, headers: Headers, body: bytes, keep_alive: bool, head: bool
    ) -> None:
        transport = self.transport
        if transport is None:
            return
        parts = [_status_line(status)]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"content-length: %d\r\n" % len(body))
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if not head:
            parts.append(body)
        transport.write(b"".join(parts))

    async def _stream(
        self, status: int, headers: Headers, chunks: AsyncIterator[bytes], keep_alive: bool
    ) -> bool:
        """Write the head, then each chunk as it comes; False if the connection must close.
        `chunks` is closed (`aclose()`) however it ends, even when nothing was read from it."""
        self.streaming = asyncio.current_task()
        try:
            parts = [_status_line(status)]
            for name, value in headers:
                parts += (name, b": ", value, b"\r\n")
            parts.append(b"transfer-encoding: chunked\r\n")
            if not keep_alive:
                parts.append(b"connection: close\r\n")
            parts.append(b"\r\n")
            if self.transport is None:
                return False
            self.transport.write(b"".join(parts))
            async for chunk in chunks:
                if self.closing:  # the client went away (connection_lost)
                    return False
                if chunk:
                    self.transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                if self.drained is not None:
                    await self.drained
            if self.closing:
                return False
            self.transport.write(b"0\r\n\r\n")
            return keep_alive
        except Exception:  # the upstream broke or stalled: break this answer too
            return False
        finally:
            self.streaming = None
            closer = getattr(chunks, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()

    def _release(self, size: int) -> None:
        """A request's body is no longer held (once; connection_lost may have freed it)."""
        size = min(size, self.held)
        self.held -= size
        self.server.buffered -= size

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _timed_out(self) -> None:
        self.timer = None
        if self.in_message and not self.closing:
            self._reject(
                408,
                b"the request did not arrive within %g s of its first byte"
                % self.server.body_timeout,
            )

    def _too_large_head(self) -> None:
        self._reject(
            431,
            b"request headers are over the gateway's limits (%d bytes, %d headers)"
            % (MAX_HEADER_BYTES, MAX_HEADERS),
        )

    def _busy(self) -> None:
        self._reject(
            503,
            b"the gateway holds too many request bodies right now; retry shortly",
            [(b"retry-after", b"1")],
        )

    def _reject(self, status: int, message: bytes, extra: Headers | None = None) -> None:
        """Answer an error the client caused (or overload) and close the connection: the rest
        of what it sends is not read."""
        if self.closing:
            return
        body = b'{"error":"' + message + b'"}'
        headers: Headers = [(b"content-type", b"application/json")] + (extra or [])
        self._write(status, headers, body, False, False)
        self._close()
        partial, self.body = self.body, []
        self._release(sum(map(len, partial)))

    def _close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def close_if_idle(self) -> None:
        if not self.busy:
            self._close()


class HttpServer:
    """Serve `handler(method, path, query, headers, body) -> (status, headers, body)`."""

    def __init__(self, handler: Handler, *, body_timeout: float = BODY_TIMEOUT_S) -> None:
        self.handler = handler
        self.body_timeout = body_timeout
        self.connections: set[_Connection] = set()
        self.in_flight = 0
        self.buffered = 0  # request body bytes held by all connections
        self.stopping = False
        self._server: asyncio.Server | None = None

    async def start(self, sock: Any) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), sock=sock, backlog=2048)

    async def shutdown(self, grace: float = 15.0) -> None:
        """Stop accepting, close idle connections, and wait (bounded) for requests in flight."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close_if_idle()
        await drained(lambda: self.in_flight, grace)
        for conn in list(self.connections):
            conn._close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


async def drained(in_flight: Callable[[], int], grace: float) -> bool:
    """Wait until `in_flight()` is 0, at most `grace` seconds; whether it got there."""

    async def count() -> int:
        return in_flight()

    try:
        await apoll_until(
            count, lambda n: n == 0, timeout=grace, expired=_Busy, first_s=0.01, max_s=0.01
        )
    except _Busy:
        return False
    return True


class _Busy(Exception):
    """Requests were still in flight when the grace period ended."""

    def __init__(self, in_flight: int) -> None:
        super().__init__(f"{in_flight} requests still in flight")


async def serve_asgi(handler: Handler, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one ASGI HTTP request with `handler` (in process, without HttpServer): a streamed
    answer is sent chunk by chunk and closed however the sending ends."""
    body = await _read_body(receive)
    status, headers, out = await handler(
        scope["method"], scope["path"], scope.get("query_string", b""), scope["headers"], body
    )
    if not isinstance(out, bytes):  # a streamed answer: chunk by chunk
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            async for chunk in out:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:  # the client may be gone: the version's stream must not stay open
            closer = getattr(out, "aclose", None)
            if closer is not None:
                await closer()
        return
    headers.append((b"content-length", str(len(out)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": out})


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    parts = [body]
    while message.get("more_body", False):
        message = await receive()
        parts.append(message.get("body", b""))
    return b"".join(parts)
