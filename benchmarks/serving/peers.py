"""Start and stop the servers under test, each pinned to one core with one worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CPR_VENV = ROOT / "benchmarks" / ".venvs" / "cpr"
GRANIAN_VENV = ROOT / "benchmarks" / ".venvs" / "granian"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Peer:
    """A running server."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all its live descendants (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
    tree = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in tree and child not in tree:
                tree.add(child)
                grew = True
    ticks = 0
    for p in tree:
        try:
            ticks += sum(int(x) for x in _stat(p)[11:15])  # utime stime cutime cstime
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def _pin(cmd: list[str], cpu: str | None) -> list[str]:
    return ["taskset", "-c", cpu, *cmd] if cpu is not None else cmd


@contextmanager
def start(
    name: str, cmd: list[str], env: dict[str, str], ready_path: str, cpu: str | None
) -> Iterator[Peer]:
    """Start ``cmd``; wait for 200 on ``ready_path``; SIGTERM (then SIGKILL) at the end."""
    port = int(env["PORT"])
    full_env = {**os.environ, **env, "PYTHONPATH": f"{HERE}{os.pathsep}{ROOT}"}
    proc = subprocess.Popen(
        _pin(cmd, cpu), env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    peer = Peer(name, port, proc)
    try:
        deadline = time.monotonic() + 300  # the CPR server imports for seconds on a busy box
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}")
            try:
                if httpx.get(peer.url + ready_path, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become ready")
            time.sleep(0.05)
        yield peer
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def endpointkit(
    predictor: str, cpu: str | None, request_log: str = "sampled", name: str = "endpointkit"
) -> tuple[str, list[str], dict[str, str]]:
    """Our server, one worker."""
    port = str(free_port())
    cmd = [
        sys.executable, "-m", "endpointkit.serving",
        "--host", "127.0.0.1", "--port", port, "--workers", "1",
        "--model-dir", str(HERE), "--predictor", predictor, "--request-log", request_log,
    ]  # fmt: skip
    return name, cmd, {"PORT": port}


def floor(cpu: str | None) -> tuple[str, list[str], dict[str, str]]:
    """The bare ASGI app on the same uvicorn configuration."""
    port = str(free_port())
    cmd = [
        sys.executable, "-m", "uvicorn", "floor:app", "--host", "127.0.0.1", "--port", port,
        "--workers", "1", "--http", "httptools", "--loop", "uvloop", "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip
    return "floor (bare ASGI)", cmd, {"PORT": port}


def cpr_available() -> bool:
    """Whether the Vertex CPR peer's virtual environment exists."""
    return (CPR_VENV / "bin" / "python").exists()


def cpr(cpu: str | None) -> tuple[str, list[str], dict[str, str]]:
    """Vertex AI's CPR ModelServer, stock, one worker."""
    port = str(free_port())
    cmd = [
        str(CPR_VENV / "bin" / "python"),
        "-m",
        "google.cloud.aiplatform.prediction.model_server",
    ]
    env = {
        "PORT": port,
        "AIP_HTTP_PORT": port,
        "AIP_HEALTH_ROUTE": "/health",
        "AIP_PREDICT_ROUTE": "/predict",
        "AIP_STORAGE_URI": str(HERE),
        "HANDLER_MODULE": "google.cloud.aiplatform.prediction.handler",
        "HANDLER_CLASS": "PredictionHandler",
        "PREDICTOR_MODULE": "cpr_predictor",
        "PREDICTOR_CLASS": "SumPredictor",
        "VERTEX_CPR_WEB_CONCURRENCY": "1",
    }
    return "Vertex CPR ModelServer", cmd, env


def granian_available() -> bool:
    """Whether the granian virtual environment exists."""
    return (GRANIAN_VENV / "bin" / "granian").exists()


def endpointkit_on_granian(cpu: str | None) -> tuple[str, list[str], dict[str, str]]:
    """The same app under granian's ASGI interface (the alternative ASGI server), one worker."""
    port = str(free_port())
    cmd = [
        str(GRANIAN_VENV / "bin" / "granian"), "--interface", "asgi", "--factory",
        "--host", "127.0.0.1", "--port", port, "--workers", "1", "--runtime-threads", "1",
        "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
        "endpointkit.serving.app:create_app",
    ]  # fmt: skip
    env = {
        "PORT": port,
        "ENDPOINTKIT_PREDICTOR": "models:Sum",
        "ENDPOINTKIT_MODEL_DIR": str(HERE),
    }
    return "endpointkit on granian", cmd, env
