"""Fixtures that start the real server process on a free loopback port and stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ without platform variables, plus ``extra``; tests' predictors importable."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIP_", "SAGEMAKER_", "ENDPOINTKIT_", "AWS_", "GOOGLE_", "SM_"))
    }
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
    env["ENDPOINTKIT_HOST"] = "127.0.0.1"
    env.update(extra or {})
    return env


class Server:
    """A running ``python -m endpointkit.serving`` process."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"server did not listen:\n{self.log()}")

    def wait_ready(self, path: str = "/ping") -> None:
        self.wait_listening()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.client.get(path).status_code == 200:
                return
            time.sleep(0.02)
        raise RuntimeError(f"server not ready:\n{self.log()}")

    def metric(self, name: str) -> float:
        """Sum of a metric's samples whose name starts with ``name``."""
        total = 0.0
        for line in self.client.get("/metrics").text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


@contextmanager
def start_server(
    tmp_path: Path,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    *,
    ready: bool = True,
    port_flag: bool = True,
) -> Iterator[Server]:
    """Start the server; stop it (SIGTERM, then SIGKILL) when the block ends."""
    port = free_port()
    cmd = [sys.executable, "-m", "endpointkit.serving", *(args or [])]
    full_env = clean_env(env)
    if port_flag:
        cmd += ["--port", str(port)]
    else:
        for key in ("AIP_HTTP_PORT", "SAGEMAKER_BIND_TO_PORT"):
            if key in full_env:
                port = int(full_env[key])
    if "--workers" not in cmd:
        cmd += ["--workers", "1"]
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            cmd, env=full_env, stdout=log_file, stderr=subprocess.STDOUT, cwd=str(tmp_path)
        )
    server = Server(proc, port, log_path)
    try:
        if ready:
            server.wait_ready()
        else:
            server.wait_listening()
        yield server
    finally:
        server.stop()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    return d


def predictor_server(tmp_path: Path, name: str, *extra: str, **env: str) -> Any:
    """Shortcut: a server running ``predictors:<name>``."""
    d = tmp_path / "model"
    d.mkdir(exist_ok=True)
    return start_server(
        tmp_path, ["--model-dir", str(d), "--predictor", f"predictors:{name}", *extra], env
    )


@contextmanager
def asgi_in_thread(app: Any, protocol: type, loop: str = "asyncio") -> Iterator[int]:
    """``app`` served by uvicorn with the HTTP ``protocol`` class, in a thread of this process,
    on a free loopback port (yielded); stopped on exit. For tests of the protocol itself."""
    import threading

    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=protocol, loop=loop, lifespan="off",
        log_level="critical", log_config=None, server_header=False, date_header=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


def read_to_close(sock: socket.socket) -> bytes:
    """Everything ``sock`` receives until the server closes the connection."""
    data = b""
    while chunk := sock.recv(1 << 20):
        data += chunk
    return data
