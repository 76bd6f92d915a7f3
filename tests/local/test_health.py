"""A version's health check on the local backend: its startup budget replaces the backend's
start_timeout, and a version that stops answering `failure_threshold` checks is restarted.

Real processes; `health_time_scale=0.02` makes the spec's seconds fiftyfold shorter (a 60 s
budget is 1.2 s), so the tests take seconds.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from endpointkit.adapters.local import LocalBackend
from endpointkit.endpoint import Endpoint
from endpointkit.errors import DeploymentFailed
from endpointkit.spec import HealthCheck
from tests.conformance.suite import Versions
from tests.local.harness import alive, local_backend

pytestmark = pytest.mark.slow  # real processes and sockets

SCALE = 0.02


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    """A gateway whose own start_timeout (0.5 s) is too short for a model that loads in 1 s."""
    home = tmp_path_factory.mktemp("local-health")
    with local_backend(home, seed=3, start_timeout=0.5, health_time_scale=SCALE) as backend:
        yield backend


@pytest.fixture
def versions(tmp_path: Path) -> Versions:
    return Versions(tmp_path / "models")


def poll(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {limit:g} s waiting for: {what}")
        time.sleep(0.05)


def detail(local: LocalBackend, name: str, version: str, key: str) -> object:
    state = local.get(name).version(version)
    assert state is not None
    return state.details.get(key)


def test_startup_budget_replaces_start_timeout_and_fails_a_slow_version(
    local: LocalBackend, versions: Versions
) -> None:
    # 300 s x 0.02 = 6 s: enough for a 1 s load that the backend's 0.5 s would refuse.
    patient = versions.slow("v1", 1.0, HealthCheck(startup_timeout_s=300))
    ep = Endpoint.create("health-start", patient, backend=local, timeout=60)
    try:
        assert ep.predict([[1]]).version == "v1"
        # 60 s x 0.02 = 1.2 s for a model that takes 30 s to load.
        slow = versions.slow("v2", 30.0, HealthCheck(startup_timeout_s=60))
        started = time.monotonic()
        with pytest.raises(DeploymentFailed) as caught:
            ep.deploy(slow, traffic=10, timeout=60)
        assert time.monotonic() - started < 20
        error = caught.value
        assert "did not answer its health check within 1.2 s" in str(error)
        assert "health.startup_timeout_s" in str(error)
        assert error.log_hint.endswith("v2.log")
        assert Path(error.log_hint).exists()
        state = ep.status()
        assert state.version_names == ["v1"]
        assert state.traffic.serving() == {"v1": 100}
        failed = [e for e in ep.history() if e.kind == "failed"]
        assert failed
        assert failed[-1].version == "v2"
        assert ep.predict([[1]]).version == "v1"
    finally:
        local.delete("health-start")
        local.wait_deleted("health-start", timeout=60)


def test_version_that_stops_answering_is_restarted_after_the_threshold(
    local: LocalBackend, versions: Versions
) -> None:
    # Checks every 0.2 s, each allowed 0.2 s; three misses in a row restart the process. The
    # startup budget (12 s scaled) keeps a slow interpreter start on a loaded machine out of it.
    health = HealthCheck(startup_timeout_s=600, period_s=10, timeout_s=10, failure_threshold=3)
    version = versions.echo("v1").model_copy(update={"health": health})
    ep = Endpoint.create("health-live", version, backend=local, timeout=60)
    try:
        pid = detail(local, ep.name, "v1", "pid")
        assert isinstance(pid, int)
        os.kill(pid, signal.SIGSTOP)  # alive but silent, as a deadlocked server is
        try:
            poll(lambda: detail(local, ep.name, "v1", "restarts") == 1, "v1 restarted", 30)
        finally:
            if alive(pid):
                os.kill(pid, signal.SIGCONT)
        poll(lambda: detail(local, ep.name, "v1", "healthy") is True, "v1 healthy")
        assert detail(local, ep.name, "v1", "pid") != pid
        assert not alive(pid)
        assert ep.predict([[1]]).version == "v1"
        events = [e for e in ep.history() if e.version == "v1"]
        messages = [e.message for e in events if e.kind == "health"]
        # Out of routing after two misses, killed and restarted after the third.
        assert any("taken out of routing until it recovers" in m for m in messages), messages
        killed = [m for m in messages if "missed in a row" in m]
        assert killed, messages
        assert "stopped answering its health checks (3 missed in a row" in killed[0]
        assert any(e.kind == "restarted" for e in events)
    finally:
        local.delete("health-live")
        local.wait_deleted("health-live", timeout=60)
