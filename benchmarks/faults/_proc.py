"""Start and always stop the processes the fault scenarios run against; raw HTTP helpers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httptools

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def group_rss_mb(leader: int) -> float:
    """RSS of a process and its children (uvicorn's workers), from /proc."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(entry.name) == leader or int(fields[1]) == leader:
            with contextlib.suppress(OSError):
                total += rss_mb(int(entry.name))
    return total


def model_dir(tmp: Path, kind: str = "fault") -> tuple[Path, str]:
    """A model directory: `fault` (fault_model.Model) or `sklearn` (a logistic regression on
    4 features, when scikit-learn is installed). Returns (dir, predictor or '')."""
    folder = tmp / f"model-{kind}"
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "sklearn":
        try:
            import joblib
            import numpy as np
            from sklearn.linear_model import LogisticRegression
        except ImportError:
            kind = "fault"
        else:
            rng = np.random.default_rng(0)
            x = rng.normal(size=(50, 4))
            model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
            joblib.dump(model, folder / "model.joblib")
            return folder, ""
    shutil.copy(HERE / "fault_model.py", folder)
    return folder, "fault_model:Model"


class Server:
    """A running `python -m endpointkit.serving` on 127.0.0.1."""

    def __init__(self, tmp: Path, args: list[str], env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log_path = tmp / f"server-{self.port}.log"
        full = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIP_", "SAGEMAKER_", "ENDPOINTKIT_", "SM_"))
        }
        full.update(env or {})
        cmd = [sys.executable, "-m", "endpointkit.serving", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--request-log", "errors", *args]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, env=full, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, timeout: float = 5.0) -> int:
        """Status of a GET on a new connection (0 if none came)."""
        try:
            return request_sync(
                self.port, b"GET %s HTTP/1.1\r\nhost: a\r\n\r\n" % path.encode(), timeout
            )[0]
        except OSError:
            return 0

    def wait_ready(self, path: str = "/ping", limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log()[-3000:]}")
            if self.get(path, 1.0) == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"server not ready within {limit:g} s:\n{self.log()[-3000:]}")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


@contextlib.contextmanager
def serving(tmp: Path, args: list[str], env: dict[str, str] | None = None) -> Iterator[Server]:
    server = Server(tmp, args, env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class _Answers:
    """httptools callbacks: statuses and headers of the responses on one connection."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: list[tuple[int, dict[bytes, bytes], bytes]] = []
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []
        self.broken = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self.headers, b"".join(self.body)))
        self.headers, self.body = {}, []  # the same parser reads the next pipelined answer

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError:
            self.broken = True


def request_sync(port: int, raw: bytes, timeout: float) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request on a new blocking connection; the first answer."""
    answers = _Answers()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        while not answers.done:
            data = sock.recv(65536)
            if not data:
                break
            answers.feed(data)
    if not answers.done:
        raise ConnectionError("closed without an answer")
    return answers.done[0]


async def exchange(
    port: int, raw: bytes, expected: int, timeout: float, connects: list[float] | None = None
) -> tuple[list[tuple[int, dict[bytes, bytes], bytes]], str]:
    """Send `raw` on a new connection; read until `expected` answers, the close, or `timeout`.
    Returns the answers and how it ended: 'answered', 'closed', 'timeout', 'refused',
    'reset' or 'garbled'. `connects`, if given, gets the seconds the connection took."""
    answers = _Answers()
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return [], "refused"
    if connects is not None:
        connects.append(time.perf_counter() - started)
    end = "answered"
    try:
        writer.write(raw)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(answers.done) < expected:
            left = deadline - loop.time()
            if left <= 0:
                end = "timeout"
                break
            try:
                data = await asyncio.wait_for(reader.read(65536), left)
            except asyncio.TimeoutError:
                end = "timeout"
                break
            if not data:
                end = "closed"
                break
            answers.feed(data)
            if answers.broken:
                end = "garbled"
                break
    except (ConnectionError, OSError):
        end = "reset"
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return answers.done, end
