"""Contract tests against the built serving image, run the way each platform runs it.

These tests start containers with podman, so they run only in `nox -s container`, which builds
the image first and sets ENDPOINTKIT_CONTAINER_IMAGE. Anywhere else (`nox -s tests`) every test
here is deselected, not skipped. Every container binds 127.0.0.1 on the host network and is
removed when its test ends, pass or fail.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "containers" / "podman" / "containers.conf"
IMAGE_ENV = "ENDPOINTKIT_CONTAINER_IMAGE"
# Read once: tests/conftest.py clears ENDPOINTKIT_* around every test.
IMAGE = os.environ.get(IMAGE_ENV, "")
START_TIMEOUT_S = 60.0
# The iris features of one setosa and one virginica flower (scikit-learn's load_iris rows 0, 149).
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [5.9, 3.0, 5.1, 1.8]]
IRIS_CLASSES = [0, 2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "container: needs the built image (nox -s container)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IMAGE:
        return
    deselected = [item for item in items if item.get_closest_marker("container")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("container")]


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", *args],
        env={**os.environ, "CONTAINERS_CONF": str(CONF)},
        check=check,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Container:
    """One running container of the image."""

    name: str
    port: int
    client: httpx.Client = field(repr=False)

    def logs(self) -> str:
        out = podman("logs", self.name, check=False)
        return out.stdout + out.stderr

    def state(self) -> dict:
        out = podman("inspect", "--format", "{{json .State}}", self.name, check=False)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def running(self) -> bool:
        return bool(self.state().get("Running"))

    def exec(self, *cmd: str) -> subprocess.CompletedProcess:
        return podman("exec", self.name, *cmd, check=False)

    def wait_ready(self, path: str) -> float:
        """Poll ``path`` until it answers 200; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < START_TIMEOUT_S:
            try:
                if self.client.get(path, timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            if not self.running():
                raise AssertionError(f"container exited: {self.state()}\n{self.logs()}")
            time.sleep(0.05)
        raise AssertionError(f"{path} not 200 after {START_TIMEOUT_S} s:\n{self.logs()}")


@pytest.fixture(scope="session")
def image() -> str:
    return IMAGE


class Runner:
    """Starts containers of the image; ``close()`` force-removes every one it started."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.started: list[Container] = []

    def __call__(
        self,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        mounts: dict[Path, str] | None = None,
        *,
        port: int = 8080,
        ready: str | None = "/ping",
    ) -> Container:
        name = f"endpointkit-test-{uuid.uuid4().hex[:10]}"
        # The server binds 127.0.0.1 on the host's network: nothing is exposed beyond loopback.
        cmd = ["run", "--detach", "--name", name, "--network", "host"]
        for key, value in {"ENDPOINTKIT_HOST": "127.0.0.1", **(env or {})}.items():
            cmd += ["--env", f"{key}={value}"]
        for source, target in (mounts or {}).items():
            cmd += ["--volume", f"{source}:{target}:ro"]
        podman(*cmd, self.image, *(args or []))
        box = Container(name, port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30))
        self.started.append(box)
        if ready:
            box.wait_ready(ready)
        return box

    def close(self) -> None:
        for box in self.started:
            box.client.close()
            podman("rm", "--force", "--time", "0", box.name, check=False)
        self.started.clear()


@pytest.fixture
def run_container(image: str) -> Iterator[Runner]:
    runner = Runner(image)
    yield runner
    runner.close()


def _readable(path: Path) -> Path:
    """World-readable, as SageMaker's extracted model files are: the image's user is not root."""
    for p in [path, *path.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return path


@pytest.fixture(scope="session")
def iris_model(image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quickstart's iris logistic regression, trained inside the image (same scikit-learn
    as the one that will load it), saved as model.joblib."""
    out = tmp_path_factory.mktemp("iris")
    out.chmod(0o777)
    code = (
        "import joblib; from sklearn.datasets import load_iris;"
        "from sklearn.linear_model import LogisticRegression;"
        "x, y = load_iris(return_X_y=True);"
        "joblib.dump(LogisticRegression(max_iter=500).fit(x, y), '/out/model.joblib')"
    )
    podman(
        "run", "--rm", "--network", "host", "--entrypoint", "python3",
        "--volume", f"{out}:/out", image, "-c", code,
    )  # fmt: skip
    return _readable(out)


@pytest.fixture
def model_dir(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """A model directory from ``{relative path: text}``, world-readable."""

    def make(files: dict[str, str]) -> Path:
        d = tmp_path / f"model-{uuid.uuid4().hex[:6]}"
        for rel, text in files.items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / rel).write_text(text)
        return _readable(d)

    return make
