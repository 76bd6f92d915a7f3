"""A minimal HTTP/1.1 keep-alive client for the gateway's hot path: a version server's Unix
socket, or a port on 127.0.0.1 where Unix sockets are unavailable.

An asyncio protocol with httptools' response parser and one future per request; a general
client (httpx) or stream readers cost several times more per request, which shows directly in
the gateway's overhead. Deadlines share one timer per pool (`_Deadlines`): a timer per request
cost about 2 us of the gateway's ~45 us CPU per request. Streamed answers (`Pool.stream`) use a
connection of their own, so the pooled path is untouched by them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar, cast

import httptools

from endpointkit.serving.types import Headers

__all__ = ["Address", "Pool", "StreamBody", "UpstreamError", "UpstreamTimeout"]

Answer = tuple[int, Headers, bytes]
#: Where a version server listens: a Unix socket's path, or a port on 127.0.0.1.
Address = int | str
_P = TypeVar("_P", bound=asyncio.Protocol)
MAX_IDLE = 64
#: Seconds a pooled connection may sit idle before it is dropped rather than reused: well
#: below the version server's keep-alive (75 s), so the server never closes one under a
#: request we are writing (such a request could not be told from one that killed it).
IDLE_S = 30.0
STREAM_BUFFER = 1 << 20  # bytes of a streamed answer held before reading from it pauses
#: A request times out at most this share of its timeout late (and at most MAX_LATE_S).
LATE_SHARE = 0.05
MAX_LATE_S = 1.0


class UpstreamError(Exception):
    """The version server could not be reached, or closed the connection mid-answer.

    `sent` is False only when no connection could be made, so the request certainly never
    reached the server (safe to send elsewhere). Once a request is written it is never
    resent: a connection lost before the answer may be a request that killed its server, and
    replaying it would kill the next one too (a query of death)."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class UpstreamTimeout(Exception):
    """The version server did not answer in time."""


class _Conn(asyncio.Protocol):
    """One connection; at most one request at a time."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.loop = asyncio.get_running_loop()  # once: each call is a getpid() on 3.11
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.headers: Headers = []
        self.body: list[bytes] = []
        self.keep_alive = True
        self.lost = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(
                UpstreamError(
                    f"{self.where} closed the connection before answering"
                    + (f": {exc}" if exc else ""),
                    sent=True,
                )
            )

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(UpstreamError(f"bad answer: {exc}", sent=True))
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        waiter = self.waiter
        self.keep_alive = self.parser.should_keep_alive()
        if waiter is not None and not waiter.done():
            body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
            waiter.set_result((self.parser.get_status_code(), self.headers, body))

    def send(self, payload: bytes) -> asyncio.Future[Answer]:
        self.headers = []
        self.body = []
        self.waiter = self.loop.create_future()
        assert self.transport is not None
        self.transport.write(payload)
        return self.waiter

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Keep-alive connections to one version server: `address` is its Unix socket's path
    (a str) or its port on `host` (an int)."""

    def __init__(self, address: Address, host: str = "127.0.0.1") -> None:
        self.host = host
        self.address = address
        if isinstance(address, str):
            self.where, authority = f"unix:{address}", "localhost"
        else:
            self.where = authority = f"{host}:{address}"
        self._idle: list[_Conn] = []
        self._prefix = b" HTTP/1.1\r\nhost: " + authority.encode() + b"\r\ncontent-length: "
        self._deadlines = _Deadlines()
        self.closed = False

    def close(self) -> None:
        self.closed = True
        while self._idle:
            self._idle.pop().close()
        # requests still in flight keep their deadlines (a retired version may hang)

    def request(
        self,
        method: bytes,
        path: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        timeout: float | None = None,
    ) -> Coroutine[Any, Any, Answer]:
        """Send one request; return (status, headers with lower-case names, body).

        The request is written once, on a live pooled connection or a new one, and never
        resent. Raises UpstreamError (`sent` False only if no connection could be made) or
        UpstreamTimeout.

        A plain function returning the exchange's coroutine (to await): one coroutine frame
        fewer on the gateway's hot path.
        """
        payload = self._payload(method, path, headers, body)
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.lost and conn.idle_since > conn.loop.time() - IDLE_S:
                return self._exchange(conn, payload, timeout)
            conn.close()  # closed by the server, or idle long enough that it may be
        return self._exchange_new(payload, timeout)

    async def _exchange_new(self, payload: bytes, timeout: float | None) -> Answer:
        return await self._exchange(await self._connect(_Conn), payload, timeout)

    async def stream(
        self,
        method: bytes,
        path: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        timeout: float | None = None,
    ) -> tuple[int, Headers, bytes | StreamBody]:
        """Send one request on a new connection; a 2xx answer's body is a StreamBody that
        yields chunks as they arrive (other answers are read whole, as bytes). `timeout`
        bounds the wait for the head and for each chunk. Raises UpstreamError or
        UpstreamTimeout."""
        conn = await self._connect(_StreamConn)
        conn.send(self._payload(method, path, headers, body))
        try:
            status, answer_headers = await asyncio.wait_for(conn.head, timeout)
        except asyncio.TimeoutError:
            conn.close()
            raise UpstreamTimeout(f"no answer within {timeout:g} s") from None
        except BaseException:
            conn.close()
            raise
        stream = StreamBody(conn, timeout)
        if status >= 300:
            return status, answer_headers, await stream.read()
        return status, answer_headers, stream

    def _payload(
        self, method: bytes, path: bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> bytes:
        head = [method, b" ", path, self._prefix, str(len(body)).encode()]
        for name, value in headers:
            head += (b"\r\n", name, b": ", value)
        head.append(b"\r\n\r\n")
        return b"".join(head) + body

    async def _connect(self, protocol: Callable[[str], _P]) -> _P:
        """A new connection speaking `protocol`; UpstreamError (not sent) if none can be made."""
        loop = asyncio.get_running_loop()
        address, where = self.address, self.where
        try:
            if isinstance(address, str):
                _, conn = await loop.create_unix_connection(lambda: protocol(where), address)
            else:
                _, conn = await loop.create_connection(lambda: protocol(where), self.host, address)
        except OSError as exc:
            raise UpstreamError(f"cannot connect to {where}: {exc}", sent=False) from None
        return conn

    async def _exchange(self, conn: _Conn, payload: bytes, timeout: float | None) -> Answer:
        waiter = conn.send(payload)
        if timeout is not None:
            self._deadlines.add(conn.loop, waiter, timeout)
        try:
            answer = await waiter
        except BaseException:
            conn.close()
            raise
        finally:
            if timeout is not None:
                self._deadlines.pending.pop(waiter, None)
        if conn.keep_alive and not conn.lost and not self.closed and len(self._idle) < MAX_IDLE:
            conn.idle_since = conn.loop.time()
            self._idle.append(conn)
        else:
            conn.close()
        return answer


class _StreamConn(asyncio.Protocol):
    """One connection for one streamed answer: the head resolves `head`, body chunks queue."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.head: asyncio.Future[tuple[int, Headers]] = asyncio.get_running_loop().create_future()
        self.headers: Headers = []
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.done = False
        self.error: Exception | None = None
        self.wakeup: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"bad answer: {exc}", sent=True))
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if not self.head.done():
            self.head.set_result((self.parser.get_status_code(), self.headers))

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > STREAM_BUFFER and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()  # the client reads slower than the model writes
        self._wake()

    def on_message_complete(self) -> None:
        self.done = True
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done:
            self._fail(
                UpstreamError(
                    f"{self.where} closed the connection before the answer's end"
                    + (f": {exc}" if exc else ""),
                    sent=True,
                )
            )
        self.transport = None

    def _fail(self, error: Exception) -> None:
        if not self.head.done():
            self.head.set_exception(error)
        elif self.error is None:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        wakeup = self.wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def take(self) -> bytes:
        """Everything received so far, joined; reading resumes if it was paused."""
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def close(self) -> None:
        self.done = True
        if self.transport is not None:
            self.transport.close()


class StreamBody:
    """A streamed answer's body: `async for chunk in body`. Raises UpstreamError if the server
    breaks the stream and UpstreamTimeout if no chunk comes within the timeout; `aclose()`
    drops the connection (idempotent), and `on_done` runs once when the body ends either way."""

    def __init__(self, conn: _StreamConn, timeout: float | None) -> None:
        self._conn = conn
        self._timeout = timeout
        self._closed = False
        self.on_done: Callable[[], None] | None = None

    def __aiter__(self) -> StreamBody:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        while not conn.chunks:
            if conn.error is not None:
                await self.aclose()
                raise conn.error
            if conn.done or self._closed:
                await self.aclose()
                raise StopAsyncIteration
            conn.wakeup = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(conn.wakeup, self._timeout)
            except asyncio.TimeoutError:
                await self.aclose()
                raise UpstreamTimeout(f"no data for {self._timeout:g} s mid-answer") from None
        return conn.take()

    async def read(self) -> bytes:
        """The whole (rest of the) body."""
        return b"".join([chunk async for chunk in self])

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._conn.close()
        done, self.on_done = self.on_done, None
        if done is not None:
            done()


class _Deadlines:
    """The deadlines of a pool's requests in flight, checked by one timer.

    The timer is armed for the earliest deadline plus a slack (LATE_SHARE of that request's
    timeout, at most MAX_LATE_S); requests that come meanwhile, whose deadlines are later, need
    no timer of their own. When it fires it fails the requests past their deadline with
    UpstreamTimeout and re-arms for the rest, so under steady load it fires about once per
    timeout instead of a timer being made and cancelled for every request."""

    __slots__ = ("at", "loop", "pending", "timer")

    def __init__(self) -> None:
        # waiter -> (deadline, timeout); a request's entry goes as soon as it ends either way
        self.pending: dict[asyncio.Future[Answer], tuple[float, float]] = {}
        self.timer: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.at = 0.0  # when the armed timer fires

    def add(
        self, loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[Answer], timeout: float
    ) -> None:
        deadline = loop.time() + timeout
        self.pending[waiter] = (deadline, timeout)
        late = min(timeout * LATE_SHARE, MAX_LATE_S)
        if self.timer is None or self.loop is not loop or self.at > deadline + late:
            self._arm(loop, deadline + late)

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self.loop is not loop:  # a pool used from another loop: the old one is gone
            self.timer = None
            self.pending = {w: d for w, d in self.pending.items() if w.get_loop() is loop}
        elif self.timer is not None:
            self.timer.cancel()
        self.loop, self.at = loop, at
        self.timer = loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self.timer = None
        loop = self.loop
        assert loop is not None
        now = loop.time()
        earliest: float | None = None
        for waiter, (deadline, timeout) in list(self.pending.items()):
            if deadline <= now:
                del self.pending[waiter]
                if not waiter.done():
                    waiter.set_exception(UpstreamTimeout(f"no answer within {timeout:g} s"))
                continue
            at = deadline + min(timeout * LATE_SHARE, MAX_LATE_S)
            if earliest is None or at < earliest:
                earliest = at
        if earliest is not None:
            self._arm(loop, earliest)
