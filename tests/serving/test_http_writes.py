"""How the server writes its answers: a response's head and body leave in one write.

uvicorn writes the head and the body of every answer with two ``write`` syscalls; the server's
protocol (``serving/protocol.py``) holds a head with a ``content-length`` until the body is
written and sends both together. Counted from the outside: ``/proc/PID/io``'s ``syscw`` is the
server process's write-like syscalls (libuv writes sockets with ``write``/``writev``).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from endpointkit.serving.protocol import LimitedHttpToolsProtocol

from .conftest import Server, asgi_in_thread, predictor_server, read_to_close

REQUESTS = 100


def _syscw(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/io").read_text()
    except OSError as exc:  # not Linux, or /proc hidden: nothing to count with
        pytest.skip(f"/proc/{pid}/io cannot be read: {exc}")
    return next(int(line.split()[1]) for line in text.splitlines() if line.startswith("syscw"))


def _read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP answer with a content-length: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1 << 20)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(1 << 20)
        assert chunk, (head, len(body))
        body += chunk
    assert len(body) == length, (head, len(body))
    return head, body


def _post(body: bytes) -> bytes:
    return (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


def _writes_per_answer(server: Server, request: bytes, expect: bytes) -> float:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        assert _read_answer(sock)[1] == expect
        time.sleep(0.2)  # the server's own writes after an answer (request log) settle
        before = _syscw(server.proc.pid)
        for _ in range(REQUESTS):
            sock.sendall(request)
            head, body = _read_answer(sock)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert body == expect
        return (_syscw(server.proc.pid) - before) / REQUESTS


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("writes")
    with predictor_server(tmp, "Echo") as server:
        yield server


def test_an_answer_is_one_write(echo: Server) -> None:
    body = b'["a"]'
    # per request: the answer, plus the model thread waking the event loop (an eventfd
    # write); uvicorn alone made it 3 (head, body, wake-up). Above 0.9: a sandbox that counts
    # no writes at all (syscw 0) measures nothing
    writes = _writes_per_answer(echo, _post(body), body)
    assert 0.9 < writes < 2.5, writes


def test_a_large_answer_arrives_whole(echo: Server) -> None:
    # a body of 64 KiB or more is written after its head, not copied behind it
    body = b'["' + b"a" * 300_000 + b'"]'
    with socket.create_connection(("127.0.0.1", echo.port), timeout=10) as sock:
        for _ in range(3):
            sock.sendall(_post(body))
            head, answer = _read_answer(sock)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert answer == body


def test_head_request_gets_its_head(echo: Server) -> None:
    with socket.create_connection(("127.0.0.1", echo.port), timeout=10) as sock:
        sock.sendall(b"HEAD /v2 HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"content-length: " in head.lower()
        assert rest == b""
        # the connection stays usable: the next answer is whole
        sock.sendall(_post(b"[5]"))
        assert _read_answer(sock)[1] == b"[5]"


def test_expect_100_continue_is_answered_before_the_body(echo: Server) -> None:
    with socket.create_connection(("127.0.0.1", echo.port), timeout=10) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            chunk = sock.recv(1)
            assert chunk, interim
            interim += chunk
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"[7]")
        head, body = _read_answer(sock)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert body == b"[7]"


async def _start_then_fail(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app that sends a head with a content-length, then fails before the body."""
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
    )
    raise RuntimeError("failed after the head")


async def _start_then_str_body(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app that breaks the spec: its body is a str (the write raises TypeError)."""
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
    )
    await send({"type": "http.response.body", "body": "hello"})


@pytest.mark.parametrize("app", [_start_then_fail, _start_then_str_body], ids=["fail", "str"])
def test_a_head_whose_body_never_comes_is_still_written(app: Any) -> None:
    # as under plain uvicorn: the client gets the head, then the connection closes; a held
    # head is written when the connection closes, never lost
    with (
        asgi_in_thread(app, LimitedHttpToolsProtocol) as port,
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_to_close(sock)
    assert data.startswith(b"HTTP/1.1 200"), data
    assert data.endswith(b"\r\n\r\n"), data  # the head, no body, then the close
