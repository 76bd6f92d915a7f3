"""uvicorn's httptools protocol with the limits it lacks (read at uvicorn 0.55):

- header bytes and count: ``HttpToolsProtocol`` buffers a header of any size (a 128 MiB
  header was answered 200) and takes any number of headers; past ``max_header_bytes`` or
  ``max_headers`` the request gets 431. (uvicorn's ``h11_max_incomplete_event_size`` exists
  only for h11, the slow fallback; ``server.py`` sets it there.)
- read timeouts: uvicorn has only the keep-alive timeout, which the first byte of a request
  cancels, so a client dripping its head or body held the connection forever. The head must
  be complete ``header_timeout_s`` after its first byte (or after the connection opened), the
  body ``body_timeout_s`` after the head; else 408.
- a parse error after a pipelined request: uvicorn answers 400 and closes at once, dropping
  the answer to the request still running. The 400 now waits for the earlier answers.
- one write per answer: uvicorn writes a response's head and its body with two
  ``transport.write`` calls, so two ``write`` syscalls. A head with a ``content-length`` is
  now held until the body's first write and leaves with it (a chunked, streaming, head is
  written at once, as before). So an app that waits between its head and its body delays
  the head too; ours sends them back to back. On the row-sum model this took the server's CPU per
  ``/invocations`` request from 53.2 to 47.2 us (benchmarks/results/profile.md).

Cost per request: two ``loop.time()`` calls, a few attribute stores, one small object. One
sweeper task per worker checks the deadlines every ``SWEEP_S``, so a timeout fires up to that
much late.
Rejections close with a short lingering half-close, so the client reads the answer before the
connection goes (closing with unread input would reset it).
"""

from __future__ import annotations

import asyncio
import functools
import math
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .settings import Settings

SWEEP_S = 0.25
_JOIN_BELOW = 64 * 1024  # a body smaller than this is copied after its head: one write
LINGER_S = 2.0
_HEAD, _BODY, _IDLE = 0, 1, 2


@functools.cache
def _settings() -> Settings:
    return Settings.from_env()


def _answer(status: int, code: str, message: str) -> bytes:
    body = b'{"error":"%s","code":"%s"}' % (message.encode(), code.encode())
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


async def _too_many_headers(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI app a request with too many headers is given instead of ours."""
    limit = _settings().max_headers
    message = (
        f"The request has more than {limit} headers; send fewer, or raise "
        f"ENDPOINTKIT_MAX_HEADERS on the server"
    )
    body = b'{"error":"%s","code":"headers_too_large"}' % message.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 431,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Sweeper:
    """Checks every connection's read deadline every SWEEP_S (one task per worker)."""

    task: asyncio.Task[None] | None = None

    @classmethod
    def ensure(cls, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        if cls.task is None or cls.task.done():
            cls.task = loop.create_task(cls._run(loop, connections))

    @staticmethod
    async def _run(loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        while connections:
            await asyncio.sleep(SWEEP_S)
            now = loop.time()
            for conn in list(connections):
                if isinstance(conn, LimitedHttpToolsProtocol) and conn.deadline < now:
                    conn.read_timed_out()


class _HeadWithBody:
    """A request cycle's transport until its answer's head has gone out with the body.

    uvicorn's ``RequestResponseCycle.send`` marks the response started, then writes the head;
    with a ``content-length`` (not chunked) and not for HEAD, the next write is the body's
    first. Everything else passes through, and once the two are written together the cycle
    gets the real transport back. A head still held when the response completes or the
    connection closes (no body write came) is written then, as uvicorn would have."""

    __slots__ = ("cycle", "head", "on_response", "transport")

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self.transport = transport
        self.cycle = cycle
        self.head = b""
        self.on_response = cycle.on_response
        cycle.transport = self
        cycle.on_response = self.response_complete

    def write(self, data: bytes) -> None:
        head = self.head
        if head:
            if len(data) < _JOIN_BELOW:
                joined = head + data  # first: a body of the wrong type raises, head still held
                self.head = b""
                self.cycle.transport = self.transport
                self.transport.write(joined)
            else:  # a large body is not copied; one more syscall is nothing next to it
                self.flush()
                self.transport.write(data)
            return
        cycle = self.cycle
        if (
            cycle.response_started
            and cycle.chunked_encoding is False
            and cycle.scope["method"] != "HEAD"
        ):
            self.head = data
            return
        self.transport.write(data)

    def flush(self) -> None:
        """Write a head still held, and hand the cycle its transport back."""
        self.cycle.transport = self.transport
        if self.head:
            self.transport.write(self.head)
            self.head = b""

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def response_complete(self) -> None:
        self.flush()
        self.on_response()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` plus header limits, read timeouts, pipelining-safe 400s and one
    send per answer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        s = _settings()
        self.max_header_bytes = s.max_header_bytes
        self.max_headers = s.max_headers
        self.header_timeout_s = s.header_timeout_s
        self.body_timeout_s = s.body_timeout_s
        self.phase = _HEAD
        self.deadline = math.inf
        self.head_bytes = 0
        self.header_count = 0
        self.completed_in_feed = False
        self.rejection: bytes | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline = self.loop.time() + self.header_timeout_s
        _Sweeper.ensure(self.loop, self.connections)

    def data_received(self, data: bytes) -> None:
        if self.rejection is not None:  # rejected: discard what still comes
            return
        self._unset_keepalive_if_required()
        self.completed_in_feed = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            self.reject(400, "bad_request", "Invalid HTTP request received; send HTTP/1.1")
            return
        if self.phase == _HEAD:
            # this chunk's bytes all belong to a head, unless a message ended inside it
            self.head_bytes = 0 if self.completed_in_feed else self.head_bytes + len(data)
            if self.head_bytes > self.max_header_bytes:
                self.reject(
                    431,
                    "headers_too_large",
                    f"The request headers exceed {self.max_header_bytes} bytes; send smaller "
                    f"headers, or raise ENDPOINTKIT_MAX_HEADER_BYTES on the server",
                )

    # parser callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.phase = _HEAD
        self.header_count = 0
        self.deadline = self.loop.time() + self.header_timeout_s

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        if self.header_count <= self.max_headers:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.phase = _BODY
        self.head_bytes = 0
        self.deadline = self.loop.time() + self.body_timeout_s
        previous = self.cycle
        if self.header_count <= self.max_headers:
            super().on_headers_complete()
        else:
            app = self.app
            self.app = _too_many_headers
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        cycle = self.cycle
        # the cycle's task is created, not yet run (uvicorn's loops have no eager tasks)
        if cycle is not previous and cycle is not None:
            _HeadWithBody(self.transport, cycle)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.phase = _HEAD
        self.deadline = math.inf  # until the next request's first byte (keep-alive applies)
        self.completed_in_feed = True

    # rejections -----------------------------------------------------------------------
    def read_timed_out(self) -> None:
        """Called by the sweeper once the deadline passed: 408."""
        self.deadline = math.inf
        head = self.phase == _HEAD
        part = "headers" if head else "body"
        limit = self.header_timeout_s if head else self.body_timeout_s
        variable = "ENDPOINTKIT_HEADER_TIMEOUT_S" if head else "ENDPOINTKIT_BODY_TIMEOUT_S"
        cycle = self.cycle
        if self.phase == _BODY and cycle is not None and not cycle.response_started:
            # the app waits for the body: it sees a disconnect, and its answer goes nowhere
            cycle.disconnected = True
            cycle.message_event.set()
        self.reject(
            408,
            "request_timeout",
            f"The request {part} did not arrive within {limit:g} s; send the whole request "
            f"promptly, or raise {variable} on the server",
        )

    def reject(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` and close, after any pipelined answers still owed."""
        self.rejection = _answer(status, code, message)
        self.deadline = math.inf
        cycle = self.cycle
        owed = self.pipeline or (
            cycle is not None and not cycle.response_complete and not cycle.disconnected
        )
        if not owed:
            self._send_rejection()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.rejection and not self.pipeline:
            self._unset_keepalive_if_required()
            self._send_rejection()

    def _send_rejection(self) -> None:
        transport = self.transport
        if not self.rejection or transport.is_closing():
            return
        transport.write(self.rejection)
        self.rejection = b""  # sent; keep discarding input
        try:
            transport.write_eof()  # lingering close: read (and drop) what the client still sends
        except (NotImplementedError, RuntimeError, OSError):
            transport.close()
            return
        self.flow.resume_reading()
        self.loop.call_later(LINGER_S, transport.close)
