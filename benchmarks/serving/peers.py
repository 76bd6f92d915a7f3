"""Start and stop the servers under test, each pinned to its cores, in its own session.

A `Spec` says how to start one server; `start()` runs it in a new process session (so every
process it forks is ours to stop: SIGTERM to the group, then SIGKILL), waits until it answers,
and yields a `Peer`. `cpu_seconds()` reads the CPU time of the whole process tree from /proc.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from . import envs

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
GRANIAN_VENV = ROOT / "benchmarks" / ".venvs" / "granian"


def free_port(low: int = 0) -> int:
    """A free TCP port on 127.0.0.1; from [low, low + 10000) when ``low`` is given."""
    for port in random.sample(range(low, low + 10000), 200) if low else [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError(f"no free port in [{low}, {low + 10000})")


@dataclass
class Spec:
    """How to start one server: command, environment, and how to tell it is ready."""

    name: str
    cmd: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    # ready when GET ready_path answers 200, or (ready_post) when that POST answers 200
    ready_path: str = "/ping"
    ready_post: tuple[str, bytes] | None = None
    cwd: str | None = None
    timeout_s: float = 240.0  # CPR, BentoML and MMS import for many seconds on a busy box


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


def tree(pid: int) -> set[int]:
    """``pid`` and all its live descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
    found = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in found and child not in found:
                found.add(child)
                grew = True
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all its descendants, live and reaped (/proc)."""
    ticks = 0
    for p in tree(pid):
        try:
            ticks += sum(int(x) for x in _stat(p)[11:15])  # utime stime cutime cstime
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def _pin(cmd: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if cpus is not None else cmd


def _ready(spec: Spec, url: str) -> bool:
    try:
        if spec.ready_post is not None:
            path, body = spec.ready_post
            headers = {"content-type": "application/json"}
            return httpx.post(url + path, content=body, headers=headers, timeout=5).is_success
        return httpx.get(url + spec.ready_path, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def start(spec: Spec, cpus: str | None) -> Iterator[Peer]:
    """Start ``spec`` on ``cpus``; wait until ready; stop its whole process group at the end."""
    # the caller's PYTHONPATH stays last (a GPU machine's packages can live outside the venv)
    paths = [str(APPS), str(HERE), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **spec.env}
    # the server's output, kept until it stops (its tail explains a failed start)
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in the finally below
        prefix=f"ek-bench-{spec.port}-", suffix=".log", delete=False
    )
    proc = subprocess.Popen(
        _pin(spec.cmd, cpus),
        env=env,
        cwd=spec.cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    peer = Peer(spec.name, spec.port, proc)
    try:
        deadline = time.monotonic() + spec.timeout_s
        while not _ready(spec, peer.url):
            if proc.poll() is not None:
                tail = Path(log.name).read_text(errors="replace").strip().splitlines()[-5:]
                raise RuntimeError(f"{spec.name} exited with {proc.returncode}: {tail}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{spec.name} not ready after {spec.timeout_s:.0f} s")
            time.sleep(0.1)
        yield peer
    finally:
        _stop(proc)
        log.close()
        Path(log.name).unlink(missing_ok=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we started, then SIGKILL what is left of it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # children (JVM, BentoML workers) may outlive the leader
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


# --- the servers ---------------------------------------------------------------------------


def endpointkit(
    predictor: str | None,
    model_dir: Path = HERE,
    *,
    workers: int = 1,
    request_log: str = "sampled",
    name: str = "endpointkit",
    env: dict[str, str] | None = None,
) -> Spec:
    """Our server (``python -m endpointkit.serving``); ``env`` adds settings."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "endpointkit.serving",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--model-dir", str(model_dir), "--request-log", request_log,
    ]  # fmt: skip
    if predictor is not None:
        cmd += ["--predictor", predictor]
    return Spec(name, cmd, port, env or {})


def floor(*, workers: int = 1, app: str = "floor:app", model_dir: Path | None = None) -> Spec:
    """A bare ASGI app on the same uvicorn configuration (httptools, uvloop, no access log)."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--http", "httptools", "--loop", "uvloop",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    env = {"MODEL_DIR": str(model_dir)} if model_dir is not None else {}
    return Spec("floor (bare ASGI)", cmd, port, env)


def cpr(env: envs.Env, model_dir: Path | None, workdir: Path) -> Spec:
    """Vertex AI's CPR ModelServer, stock, one worker: the stock SklearnPredictor on
    ``model_dir``, or the trivial ``cpr_predictor.SumPredictor`` when it is None."""
    port = free_port()
    if model_dir is None:
        predictor = ("cpr_predictor", "SumPredictor")
        storage = str(HERE)
    else:
        predictor = ("google.cloud.aiplatform.prediction.sklearn.predictor", "SklearnPredictor")
        storage = str(model_dir)
    variables = {
        "AIP_HTTP_PORT": str(port),
        "AIP_HEALTH_ROUTE": "/health",
        "AIP_PREDICT_ROUTE": "/predict",
        "AIP_STORAGE_URI": storage,
        "HANDLER_MODULE": "google.cloud.aiplatform.prediction.handler",
        "HANDLER_CLASS": "PredictionHandler",
        "PREDICTOR_MODULE": predictor[0],
        "PREDICTOR_CLASS": predictor[1],
        "VERTEX_CPR_WEB_CONCURRENCY": "1",
    }
    cmd = [env.python, "-m", "google.cloud.aiplatform.prediction.model_server"]
    # the stock SklearnPredictor copies the artifacts into its working directory
    return Spec("Vertex CPR ModelServer", cmd, port, variables, "/health", cwd=str(workdir))


def kserve(env: envs.Env, model_dir: Path) -> Spec:
    """KServe's ModelServer with a `kserve.Model` subclass (apps/kserve_iris.py), one worker."""
    port = free_port()
    cmd = [env.python, str(APPS / "kserve_iris.py"), "--http_port", str(port)]
    variables = {"MODEL_DIR": str(model_dir)}
    return Spec("KServe ModelServer", cmd, port, variables, "/v2/health/ready")


def bentoml(env: envs.Env, model_dir: Path, workdir: Path, ready_body: bytes) -> Spec:
    """A BentoML 1.4 service (apps/bentoml_iris.py), one worker, stock settings."""
    port = free_port()
    cmd = [
        env.bin("bentoml"), "serve", "bentoml_iris:Iris", "--host", "127.0.0.1",
        "--port", str(port), "--working-dir", str(APPS),
    ]  # fmt: skip
    variables = {
        "MODEL_DIR": str(model_dir),
        "BENTOML_HOME": str(workdir / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    return Spec(
        "BentoML", cmd, port, variables, ready_post=("/predict", ready_body), cwd=str(workdir)
    )


def mms(env: envs.Env, model_dir: Path, workdir: Path, ready_body: bytes) -> Spec:
    """The SageMaker inference toolkit on Multi Model Server (Java front end), one Python
    worker, driven as `sagemaker_inference.model_server` does, with its config in ``workdir``
    (the toolkit itself writes /etc/sagemaker-mms.properties)."""
    # MMS refuses ports from the ephemeral range ("Invalid port number")
    port, management = free_port(20000), free_port(20000)
    archive = workdir / "mms-models"
    archive.mkdir(parents=True, exist_ok=True)
    staged = workdir / "mms-model"
    staged.mkdir(parents=True, exist_ok=True)
    for f in model_dir.iterdir():
        (staged / f.name).write_bytes(f.read_bytes())
    (staged / "mms_iris_handler.py").write_text((APPS / "mms_iris_handler.py").read_text())
    subprocess.run(
        [
            env.bin("model-archiver"),
            "--model-name",
            "model",
            "--handler",
            "mms_iris_handler:handle",
            "--model-path",
            str(staged),
            "--export-path",
            str(archive),
            "--archive-format",
            "no-archive",
            "-f",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    config = workdir / "mms.properties"
    config.write_text(
        f"inference_address=http://127.0.0.1:{port}\n"
        f"management_address=http://127.0.0.1:{management}\n"
        "default_workers_per_model=1\n"
        "default_response_timeout=60\n"
        "vmargs=-XX:-UseContainerSupport -Xmx512m\n"
        "enable_envvars_config=true\n"
        "decode_input_request=false\n"  # as the toolkit's default-mms.properties
    )
    cmd = [
        env.bin("multi-model-server"), "--start", "--foreground", "--mms-config", str(config),
        "--model-store", str(archive), "--models", "model=model",
    ]  # fmt: skip
    variables = {"PATH": f"{env.path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    return Spec(
        "SageMaker toolkit on MMS",
        cmd,
        port,
        variables,
        ready_post=("/invocations", ready_body),
        cwd=str(workdir),
    )


def granian_available() -> bool:
    """Whether the granian virtual environment exists."""
    return (GRANIAN_VENV / "bin" / "granian").exists()


def endpointkit_on_granian() -> Spec:
    """The same app under granian's ASGI interface (the alternative ASGI server), one worker."""
    port = free_port()
    cmd = [
        str(GRANIAN_VENV / "bin" / "granian"), "--interface", "asgi", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--runtime-threads", "1",
        "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
        "endpointkit.serving.app:create_app",
    ]  # fmt: skip
    env = {"ENDPOINTKIT_PREDICTOR": "models:Sum", "ENDPOINTKIT_MODEL_DIR": str(HERE)}
    return Spec("endpointkit on granian", cmd, port, env)


PeerFactory = Callable[..., Spec]
