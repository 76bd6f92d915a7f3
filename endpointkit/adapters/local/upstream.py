"""A minimal HTTP/1.1 keep-alive client for the gateway's hot path: loopback only.

An asyncio protocol with httptools' response parser, one future per request and a timer for
its deadline; a general client (httpx) or stream readers cost several times more per request,
which shows directly in the gateway's overhead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

import httptools

__all__ = ["Pool", "UpstreamError", "UpstreamTimeout"]

Headers = Sequence[tuple[bytes, bytes]]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
MAX_IDLE = 64


class UpstreamError(Exception):
    """The version server could not be reached, or closed the connection mid-answer.

    `sent` is False when the request certainly never reached the server (safe to resend)."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class UpstreamTimeout(Exception):
    """The version server did not answer in time."""


class _Conn(asyncio.Protocol):
    """One connection; at most one request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.got_bytes = False
        self.keep_alive = True
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(
                UpstreamError(
                    f"127.0.0.1:{self.port} closed the connection" + (f": {exc}" if exc else ""),
                    sent=self.got_bytes,
                )
            )

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
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
        self.got_bytes = False
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(payload)
        return self.waiter

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Keep-alive connections to one version server on 127.0.0.1."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._idle: list[_Conn] = []
        self._prefix = b" HTTP/1.1\r\nhost: " + f"{host}:{port}".encode() + b"\r\ncontent-length: "
        self.closed = False

    def close(self) -> None:
        self.closed = True
        while self._idle:
            self._idle.pop().close()

    async def request(
        self,
        method: bytes,
        path: bytes,
        headers: Headers,
        body: bytes,
        timeout: float | None = None,
    ) -> Answer:
        """Send one request; return (status, headers with lower-case names, body).

        A stale pooled connection is retried on the next one (the request never reached the
        server). Raises UpstreamError or UpstreamTimeout.
        """
        head = [method, b" ", path, self._prefix, str(len(body)).encode()]
        for name, value in headers:
            head += (b"\r\n", name, b": ", value)
        head.append(b"\r\n\r\n")
        payload = b"".join(head) + body
        while self._idle:
            conn = self._idle.pop()
            if conn.lost:
                continue
            try:
                return await self._exchange(conn, payload, timeout)
            except UpstreamError as exc:
                if exc.sent:
                    raise
                # a keep-alive connection the server had closed: try the next one
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Conn(self.port), self.host, self.port)
        except OSError as exc:
            raise UpstreamError(
                f"cannot connect to 127.0.0.1:{self.port}: {exc}", sent=False
            ) from None
        try:
            return await self._exchange(conn, payload, timeout)
        except UpstreamError as exc:
            exc.sent = True  # a fresh connection accepted it: it may have been processed
            raise

    async def _exchange(self, conn: _Conn, payload: bytes, timeout: float | None) -> Answer:
        waiter = conn.send(payload)
        timer = None
        if timeout is not None:
            timer = asyncio.get_running_loop().call_later(timeout, _expire, waiter, timeout)
        try:
            answer = await waiter
        except BaseException:
            conn.close()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if conn.keep_alive and not conn.lost and not self.closed and len(self._idle) < MAX_IDLE:
            self._idle.append(conn)
        else:
            conn.close()
        return answer


def _expire(waiter: asyncio.Future[Answer], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout(f"no answer within {timeout:g} s"))
