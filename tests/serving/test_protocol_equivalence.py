"""Our HTTP protocol answers byte for byte as uvicorn's own, wherever it does not mean to differ.

``serving/protocol.py`` changes how uvicorn writes an answer (head and body in one write) and
adds limits. The same raw requests go to a tiny ASGI app served by uvicorn's
``HttpToolsProtocol`` and by ``LimitedHttpToolsProtocol``, on uvloop and on asyncio's loop; the
bytes each client receives must be the same. Every exchange ends with a ``Connection: close``
request (or an error that closes), so the client reads to the end of the stream.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from endpointkit.serving.protocol import LimitedHttpToolsProtocol

from .conftest import asgi_in_thread, read_to_close

BIG = 4 << 20


def _head(length: int | None, status: int = 200) -> dict[str, Any]:
    headers = [] if length is None else [(b"content-length", b"%d" % length)]
    return {"type": "http.response.start", "status": status, "headers": headers}


def _body(body: Any, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body, "more_body": more}


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/cl":
        await send(_head(5))
        await send(_body(b"hello"))
    elif path == "/parts":
        await send(_head(6))
        for piece in (b"", b"abc"):
            await send(_body(piece, more=True))
        await send(_body(b"def"))
    elif path == "/204":
        await send(_head(None, 204))
        await send(_body(b""))
    elif path == "/304":
        await send(_head(0, 304))
        await send(_body(b""))
    elif path == "/chunked":
        await send(_head(None))
        await send(_body(b"ab", more=True))
        await send(_body(b"cd"))
    elif path == "/big":
        await send(_head(BIG))
        await send(_body(b"x" * BIG))
    elif path == "/memoryview":
        await send(_head(3))
        await send(_body(memoryview(b"abc")))
    elif path == "/str":  # an app bug: a str body
        await send(_head(3))
        await send(_body("abc"))
    elif path == "/fail":
        await send(_head(5))
        raise RuntimeError("failed after the head")
    elif path == "/echo":
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await send(_head(len(body)))
        await send(_body(body))


def _request(path: bytes, method: bytes = b"GET", extra: bytes = b"", body: bytes = b"") -> bytes:
    return b"%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n%s" % (method, path, extra, body)


CLOSE = _request(b"/cl", extra=b"Connection: close\r\n")
CASES: dict[str, tuple[bytes, float]] = {  # raw bytes sent, seconds to wait before reading
    "content-length": (_request(b"/cl") + CLOSE, 0),
    "pipelined": (_request(b"/cl") + _request(b"/parts") + _request(b"/chunked") + CLOSE, 0),
    "http-1.0": (b"GET /cl HTTP/1.0\r\n\r\n", 0),
    "head": (_request(b"/cl", b"HEAD") + CLOSE, 0),
    "204": (_request(b"/204") + CLOSE, 0),
    "304": (_request(b"/304") + CLOSE, 0),
    "memoryview": (_request(b"/memoryview") + CLOSE, 0),
    "str-body": (_request(b"/str") + CLOSE, 0),
    "fail-after-head": (_request(b"/fail") + CLOSE, 0),
    "expect-100": (
        _request(b"/echo", b"POST", b"Content-Length: 3\r\nExpect: 100-continue\r\n", b"abc")
        + CLOSE,
        0,
    ),
    "big-to-a-slow-reader": (_request(b"/big") + CLOSE, 0.3),
}


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def ports(request: pytest.FixtureRequest) -> Iterator[tuple[int, int]]:
    """(uvicorn's protocol, ours), both serving the same app on the same kind of loop."""
    with (
        asgi_in_thread(_app, HttpToolsProtocol, request.param) as theirs,
        asgi_in_thread(_app, LimitedHttpToolsProtocol, request.param) as ours,
    ):
        yield theirs, ours


def _exchange(port: int, raw: bytes, wait_s: float) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        if wait_s:
            time.sleep(wait_s)
        return read_to_close(sock)


@pytest.mark.parametrize("case", list(CASES))
def test_the_same_bytes_as_uvicorn(ports: tuple[int, int], case: str) -> None:
    raw, wait_s = CASES[case]
    theirs, ours = (_exchange(port, raw, wait_s) for port in ports)
    assert theirs  # the exchange says something
    assert ours == theirs
