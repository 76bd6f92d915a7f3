"""Local versions from an image: the local backend runs a version whose spec names `image` in a
container (the built serving image, podman here) behind the same gateway, health checks,
restarts, drain and log file as process versions.

Run by `nox -s container` (deselected elsewhere, see conftest.py); skipped loudly only where
no container engine works. Every container is removed when the module ends, pass or fail, and
the module fails if any of its containers is left.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container.conftest import CONF, IRIS_CLASSES, IRIS_ROWS, podman

pytestmark = pytest.mark.container

boto3 = pytest.importorskip("boto3", reason="nox -s container installs endpointkit[sagemaker]")
from botocore.config import Config  # noqa: E402

from endpointkit import Endpoint  # noqa: E402
from endpointkit.adapters.local import LocalBackend  # noqa: E402
from endpointkit.adapters.local._container import NoEngine, find_engine  # noqa: E402
from endpointkit.errors import DeploymentFailed  # noqa: E402
from endpointkit.spec import VersionSpec  # noqa: E402
from tests.local.harness import MODELS, local_backend  # noqa: E402

LABEL = "io.endpointkit.endpoint"


def containers(endpoint: str, *, every: bool = False) -> list[str]:
    """Names of this endpoint's containers (running ones, or `every` one)."""
    out = podman(
        "ps", *(["--all"] if every else []), "--filter", f"label={LABEL}={endpoint}",
        "--format", "{{.Names}}",
    )  # fmt: skip
    return out.stdout.split()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    """A local backend whose daemon (and so its engine client) uses this repository's podman
    settings; afterwards, no container of any endpoint it made may be left."""
    os.environ["CONTAINERS_CONF"] = str(CONF)
    try:
        find_engine()
    except NoEngine as exc:
        pytest.skip(f"LOUD SKIP: no container engine works here: {exc}")
    try:
        with local_backend(tmp_path_factory.mktemp("image-home"), seed=5) as backend:
            yield backend
    finally:
        left = podman(
            "ps", "--all", "--filter", "label=io.endpointkit.endpoint", "--format", "{{.Names}}"
        ).stdout.split()
        for name in left:
            podman("rm", "--force", "--time", "0", name, check=False)
        os.environ.pop("CONTAINERS_CONF", None)
        assert not left, f"containers left after the local backend stopped: {left}"


@pytest.fixture
def endpoint(local: LocalBackend, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"img-{request.node.name.removeprefix('test_')[:20].replace('_', '-').rstrip('-')}"
    yield name
    if local.exists(name):
        local.delete(name)
        local.wait_deleted(name, timeout=60)
    assert containers(name, every=True) == []


def iris(iris_model: Path, image: str, name: str = "box") -> VersionSpec:
    return VersionSpec(name=name, model=str(iris_model), image=image)


def answering(root: Path, name: str, image: str | None = None) -> VersionSpec:
    """A version that answers its name; sleeps on "sleep:S" (tests/local/models)."""
    model_dir = root / name
    model_dir.mkdir(parents=True)
    shutil.copy(MODELS / "faulty_predictor.py", model_dir / "faulty_predictor.py")
    (model_dir / "answer.txt").write_text(name)
    for path in [model_dir, *model_dir.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return VersionSpec(
        name=name, model=str(model_dir), predictor="faulty_predictor:Faulty", image=image
    )


def test_a_version_from_an_image_serves_through_the_gateway(
    local: LocalBackend, endpoint: str, iris_model: Path, image: str
) -> None:
    ep = Endpoint.create(endpoint, iris(iris_model, image), backend=local, timeout=120)
    answer = ep.predict(IRIS_ROWS)
    assert (answer.predictions, answer.version) == (IRIS_CLASSES, "box")
    (name,) = containers(endpoint)
    assert name.startswith(f"ek-{endpoint}-box-")
    # The container has no network; the gateway reaches it over its Unix socket.
    networks = podman("inspect", "--format", "{{.HostConfig.NetworkMode}}", name).stdout
    assert networks.strip() == "none"
    label = '{{index .Config.Labels "io.endpointkit.version"}}'
    assert podman("inspect", "--format", label, name).stdout.strip() == "box"
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=local.gateway_url(),
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    reply = client.invoke_endpoint(
        EndpointName=endpoint, Body=b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
        ContentType="application/json",
    )  # fmt: skip
    assert reply["Body"].read() == b'{"predictions":[0]}'
    assert reply["InvokedProductionVariant"] == "box"
    # The server's own log lines, from inside the container, are in the version's log file.
    log = Path(local.get(endpoint).versions[0].details["log"]).read_text()
    assert f"in container {name}" in log
    assert '"event":"server_started","pid":1,"version":"box"' in log, log  # PID 1: in there


def test_traffic_splits_between_a_process_and_a_container(
    local: LocalBackend, endpoint: str, iris_model: Path, image: str, tmp_path: Path
) -> None:
    ep = Endpoint.create(endpoint, answering(tmp_path, "proc"), backend=local, timeout=120)
    ep.deploy(iris(iris_model, image), traffic=0, timeout=120)
    ep.set_traffic({"proc": 50, "box": 50}, timeout=60)
    seen: dict[str | None, list[object]] = {}
    for _ in range(40):
        answer = ep.predict(IRIS_ROWS)
        seen[answer.version] = answer.predictions
    assert seen == {"proc": ["proc", "proc"], "box": IRIS_CLASSES}
    assert ep.predict(IRIS_ROWS, version="box").predictions == IRIS_CLASSES


def test_undeploy_drains_the_container_then_removes_it(
    local: LocalBackend, endpoint: str, image: str, tmp_path: Path
) -> None:
    ep = Endpoint.create(endpoint, answering(tmp_path, "stay"), backend=local, timeout=120)
    ep.deploy(answering(tmp_path, "box", image), traffic=0, timeout=120)
    (name,) = containers(endpoint)
    answers: list[object] = []
    slow = threading.Thread(
        target=lambda: answers.append(
            ep.predict(["sleep:3"], version="box", timeout=60).predictions
        )
    )
    slow.start()
    time.sleep(1)  # the request is in the container now
    ep.undeploy("box", timeout=120)
    slow.join(60)
    assert answers == [["box"]]  # finished, not cut off
    assert containers(endpoint, every=True) == []
    log = Path(local.get(endpoint).versions[0].details["log"]).parent / "box.log"
    text = log.read_text()
    assert name in text
    # SIGTERM reached the server through the engine client: it stopped cleanly, not killed.
    assert '"event":"server_stopped"' in text.split(name)[-1], text


def test_a_killed_container_is_restarted(
    local: LocalBackend, endpoint: str, iris_model: Path, image: str
) -> None:
    ep = Endpoint.create(endpoint, iris(iris_model, image), backend=local, timeout=120)
    (first,) = containers(endpoint)
    podman("kill", first)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        version = local.get(endpoint).versions[0]
        if version.details["restarts"] >= 1 and version.details["healthy"]:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"not restarted: {local.get(endpoint).versions[0].details}")
    (second,) = containers(endpoint)
    assert second != first
    assert ep.predict(IRIS_ROWS).predictions == IRIS_CLASSES
    assert [e for e in ep.history() if e.kind == "restarted"]


def test_scaling_a_container_version_replaces_its_container(
    local: LocalBackend, endpoint: str, iris_model: Path, image: str
) -> None:
    ep = Endpoint.create(endpoint, iris(iris_model, image), backend=local, timeout=120)
    (first,) = containers(endpoint)
    ep.scale("box", min_replicas=2, timeout=120)
    (second,) = containers(endpoint, every=True)  # the old one drained and was removed
    assert second != first
    env = podman("inspect", "--format", "{{json .Config.Env}}", second).stdout
    assert "ENDPOINTKIT_WORKERS=2" in env
    assert ep.predict(IRIS_ROWS).predictions == IRIS_CLASSES


def test_a_killed_gateway_leaves_no_container_and_the_next_one_starts_it_again(
    local: LocalBackend, endpoint: str, iris_model: Path, image: str
) -> None:
    Endpoint.create(endpoint, iris(iris_model, image), backend=local, timeout=120)
    (first,) = containers(endpoint)
    pid = local.gateway_status()["pid"]
    os.kill(pid, signal.SIGKILL)
    # The engine client gets SIGTERM when the gateway dies and stops its container.
    deadline = time.monotonic() + 60
    while containers(endpoint, every=True) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert containers(endpoint, every=True) == []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # reading state starts a new gateway and the version
        if local.get(endpoint).versions[0].details["healthy"] is True:
            break
        time.sleep(0.2)
    (second,) = containers(endpoint)
    assert second != first
    assert Endpoint(endpoint, backend=local).predict(IRIS_ROWS).predictions == IRIS_CLASSES


def test_an_image_that_cannot_be_had_fails_the_deploy_with_the_engines_reason(
    local: LocalBackend, endpoint: str, tmp_path: Path
) -> None:
    # localhost:443 refuses at once: the pull fails without leaving the machine.
    spec = VersionSpec(name="box", model=str(tmp_path), image="localhost/ek-absent:1")
    with pytest.raises(DeploymentFailed, match="exited with code 125") as caught:
        Endpoint.create(endpoint, spec, backend=local, timeout=120)
    assert "localhost/ek-absent:1" in str(caught.value)
    assert containers(endpoint, every=True) == []
