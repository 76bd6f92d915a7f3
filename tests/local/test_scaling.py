"""In-place scaling on the local backend: a version's worker count changes behind the gateway
without a dropped request, and a replacement that cannot start leaves the old process serving.

Real processes: the gateway, the version servers and their uvicorn worker processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from endpointkit.errors import DeploymentFailed
from tests.conformance.suite import Versions
from tests.local.harness import alive

pytestmark = pytest.mark.slow  # real processes and sockets


def _workers(pid: int) -> list[int]:
    """Worker processes uvicorn spawned under `pid` (not multiprocessing's resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


class Load:
    """Invokes the endpoint from a thread until stopped (at most 2,000 requests or 60 s)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.answers: list[str | None] = []
        self.errors: list[Exception] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and len(self.answers) < 2000:
            if time.monotonic() > deadline:
                break
            try:
                self.answers.append(self.endpoint.predict([[1.0]]).version)
            except Exception as exc:  # every failure is a test failure, reported below
                self.errors.append(exc)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _pid(local: LocalBackend, endpoint: str, version: str) -> int:
    row = local.store.endpoint(endpoint)
    assert row is not None
    live = row.version(version)
    assert live is not None
    assert live.pid is not None
    return live.pid


def test_scaling_replaces_the_process_without_dropping_requests(
    local: LocalBackend, versions: Versions, make_endpoint: Callable[..., Endpoint]
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    old_pid = _pid(local, ep.name, "v1")
    with Load(ep) as load:
        time.sleep(0.3)
        state = ep.scale("v1", 2, timeout=60)
        served_before = len(load.answers)
        deadline = time.monotonic() + 10
        while len(load.answers) < served_before + 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert load.errors == []
    assert len(load.answers) > served_before + 20  # the new process answered too
    assert set(load.answers) == {"v1"}
    new_pid = _pid(local, ep.name, "v1")
    assert new_pid != old_pid
    assert not alive(old_pid)
    assert len(_workers(new_pid)) == 2
    live = state.version("v1")
    assert live is not None
    assert live.replicas == 2
    assert live.spec_hash == versions.echo("v1").spec_hash
    assert "scaled from 1 to 2 worker processes in place" in ep.history()[-1].message


def test_a_replacement_that_cannot_start_leaves_the_old_process_serving(
    local: LocalBackend, versions: Versions, make_endpoint: Callable[..., Endpoint]
) -> None:
    v1 = versions.echo("v1")
    ep = make_endpoint(v1)
    old_pid = _pid(local, ep.name, "v1")
    assert v1.model is not None
    mode = Path(v1.model) / "mode.txt"
    mode.write_text("broken")  # the running process loaded its model already; a new one cannot
    try:
        with pytest.raises(DeploymentFailed, match="did not take effect") as failure:
            ep.scale("v1", 2, timeout=60)
    finally:
        mode.write_text("echo")
    assert "model.bin is corrupt" in str(failure.value)
    state = ep.status()
    live = state.version("v1")
    assert live is not None
    assert live.replicas == 1  # state says what runs
    assert _pid(local, ep.name, "v1") == old_pid
    assert alive(old_pid)
    assert ep.predict([[1.0]]).version == "v1"
    assert ep.history()[-1].kind == "failed"
    # Once the cause is fixed, the same call goes through.
    assert ep.scale("v1", 2, timeout=60).version("v1").replicas == 2  # type: ignore[union-attr]
