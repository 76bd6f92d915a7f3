"""Crashes and restarts with real processes: versions killed, the gateway killed, a CLI apply
killed midway, versions stopped answering, and an undeploy under load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from endpointkit.errors import DeploymentFailed, ModelError, Unavailable
from endpointkit.invocation import InvokeRequest
from endpointkit.state import Status
from tests.conformance.suite import Versions
from tests.local.harness import alive, local_backend

pytestmark = pytest.mark.slow  # real processes and sockets


def poll(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Wait (bounded) until `condition()` holds; fail naming `what` otherwise."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {limit:g} s waiting for: {what}")
        time.sleep(0.05)


def version_detail(local: LocalBackend, name: str, version: str, key: str) -> object:
    state = local.get(name).version(version)
    assert state is not None
    return state.details[key]


def test_killed_version_is_routed_around_restarted_and_recorded(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.echo("v2"), traffic={"v1": 50, "v2": 50})
    assert {ep.predict([[1]]).version for _ in range(30)} == {"v1", "v2"}
    pid = version_detail(local, ep.name, "v1", "pid")
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGKILL)
    # Right away (no client retries here) the gateway sends v1's share to v2. A request is
    # never replayed once written to a version (issue 12.12), so the few sent to v1 in the
    # moment between the SIGKILL and the kernel closing v1's socket fail (measured: up to a
    # handful on this 2-core machine); every other request succeeds.
    body = b'{"instances": [[1]]}'
    after_kill: Counter[str | None] = Counter()
    for _ in range(30):
        try:
            after_kill[local.invoke(InvokeRequest(ep.name, body)).version] += 1
        except (Unavailable, ModelError):
            after_kill["failed"] += 1
    assert after_kill["failed"] <= 5, after_kill
    assert after_kill["v2"] > 0
    poll(lambda: version_detail(local, ep.name, "v1", "restarts") == 1, "v1 restarted")
    poll(lambda: version_detail(local, ep.name, "v1", "healthy") is True, "v1 healthy")
    new_pid = version_detail(local, ep.name, "v1", "pid")
    assert new_pid != pid
    assert not alive(pid)
    assert {ep.predict([[1]]).version for _ in range(40)} == {"v1", "v2"}
    events = ep.history()
    died = [e for e in events if e.kind == "health" and e.version == "v1"]
    assert died
    assert "exited with code -9" in died[0].message
    assert any(e.kind == "restarted" and e.version == "v1" for e in events)


def test_no_healthy_version_answers_503_then_recovers(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    pid = version_detail(local, ep.name, "v1", "pid")
    assert isinstance(pid, int)
    url = f"{local.gateway_url()}/endpoints/{ep.name}/predict"
    os.kill(pid, signal.SIGSTOP)  # alive but silent: health checks time out
    try:
        poll(lambda: version_detail(local, ep.name, "v1", "healthy") is False, "v1 unhealthy")
        answer = httpx.post(url, content=b'{"instances": [1]}', timeout=10)
        assert answer.status_code == 503
        assert answer.json()["code"] == "no_healthy_version"
        assert "no healthy version" in answer.json()["error"]
    finally:
        os.kill(pid, signal.SIGCONT)
    poll(lambda: version_detail(local, ep.name, "v1", "healthy") is True, "v1 healthy again")
    assert ep.predict([[1]]).version == "v1"
    messages = [e.message for e in ep.history() if e.kind == "health"]
    assert any("stopped answering" in m for m in messages)
    assert any("healthy again" in m for m in messages)


def test_undeploy_under_load_loses_no_request(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.echo("v2"), traffic={"v1": 50, "v2": 50})
    url = f"{local.gateway_url()}/endpoints/{ep.name}/predict"
    stop = threading.Event()
    results: list[tuple[int, str | None]] = []
    errors: list[str] = []
    max_requests, max_seconds = 3000, 60.0

    def load() -> None:
        deadline = time.monotonic() + max_seconds
        with httpx.Client(timeout=10) as http:
            while not stop.is_set() and len(results) < max_requests:
                if time.monotonic() > deadline:
                    return
                try:
                    answer = http.post(url, content=b'{"instances": [1]}')
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                    continue
                results.append((answer.status_code, answer.headers.get("x-endpointkit-version")))

    workers = [threading.Thread(target=load) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        poll(lambda: len(results) >= 60, "load running", 20)
        state = ep.undeploy("v1", timeout=60)
        assert state.version_names == ["v2"]
        count = len(results)
        poll(lambda: len(results) >= count + 60, "load after undeploy", 20)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert errors == []
    statuses = Counter(status for status, _ in results)
    assert statuses == {200: len(results)}
    served = Counter(version for _, version in results)
    assert served["v1"] > 0
    assert served["v2"] > 0
    assert results[-1][1] == "v2"


def test_failed_start_reports_log_lines(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    with pytest.raises(DeploymentFailed) as caught:
        ep.deploy(versions.broken("v2"), traffic=10, timeout=60)
    text = str(caught.value)
    assert "cannot load weights" in text
    assert "Last log lines" in text
    assert caught.value.log_hint.endswith("v2.log")
    assert Path(caught.value.log_hint).exists()
    assert ep.status().traffic.serving() == {"v1": 100}


def test_missing_model_directory_is_refused_before_anything_changes(
    make_endpoint: Callable[..., Endpoint], versions: Versions, tmp_path: Path
) -> None:
    from endpointkit.errors import ValidationError
    from endpointkit.spec import VersionSpec

    ep = make_endpoint(versions.echo("v1"))
    with pytest.raises(ValidationError, match="does not exist"):
        ep.deploy(VersionSpec(name="v2", model=str(tmp_path / "nowhere")), timeout=60)
    assert ep.status().version_names == ["v1"]


def test_gateway_killed_restarts_from_state(tmp_path: Path, versions: Versions) -> None:
    with local_backend(tmp_path / "home") as local:
        ep = Endpoint.create("phoenix", versions.echo("v1"), backend=local, timeout=60)
        ep.deploy(versions.echo("v2"), traffic=40, timeout=60)
        gateway = local.store.gateway()
        assert gateway.pid is not None
        old_pids = [v.details["pid"] for v in ep.status().versions]
        os.kill(gateway.pid, signal.SIGKILL)
        # The versions die with their parent (no orphans) ...
        poll(lambda: not any(alive(p) for p in old_pids), "old version processes gone")
        # ... and the next call starts a new gateway that brings back everything in state.
        assert ep.predict([[1]]).version in ("v1", "v2")
        restarted = local.store.gateway()
        assert restarted.pid != gateway.pid
        assert restarted.port == gateway.port  # same URL for clients
        state = ep.status()
        assert state.status is Status.IN_SERVICE
        assert state.traffic.serving() == {"v1": 60, "v2": 40}
        assert {ep.predict([[1]]).version for _ in range(40)} == {"v1", "v2"}
        restarts = [e for e in ep.history() if e.kind == "restarted"]
        assert {e.version for e in restarts} == {"v1", "v2"}
        assert all("started again by gateway" in e.message for e in restarts)
        ep.delete()


def _cli(home: Path, *args: str) -> list[str]:
    code = "import sys; from endpointkit.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, *args]


def test_cli_apply_killed_midway_then_rerun_converges(tmp_path: Path, versions: Versions) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "ENDPOINTKIT_HOME": str(home)}
    spec_path = tmp_path / "endpoint.yaml"

    def write_spec(traffic: dict[str, int]) -> None:
        spec = {
            "name": "midway",
            "backend": "local",
            "versions": [
                versions.echo(v).model_dump(mode="json", exclude_defaults=True) for v in traffic
            ],
            "traffic": traffic,
        }
        spec_path.write_text(yaml.safe_dump(spec))

    with local_backend(home) as local:
        write_spec({"v1": 100})
        first = subprocess.run(
            _cli(home, "apply", str(spec_path)), env=env, capture_output=True, timeout=120
        )
        assert first.returncode == 0, first.stderr.decode()
        write_spec({"v1": 50, "v2": 50})
        cli = subprocess.Popen(
            _cli(home, "apply", str(spec_path)),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # Kill it as soon as its first change (deploy v2) is in state: mid-apply.
            poll(lambda: local.store.endpoint("midway").version("v2") is not None, "v2 written")  # type: ignore[union-attr]
        finally:
            cli.send_signal(signal.SIGKILL)
            cli.wait(10)
        # Never a mix: the split is the old one or the new one.
        state = local.wait("midway", timeout=60)
        assert state.traffic.serving() in ({"v1": 100}, {"v1": 50, "v2": 50})
        rerun = subprocess.run(
            _cli(home, "apply", str(spec_path)), env=env, capture_output=True, timeout=120
        )
        assert rerun.returncode == 0, rerun.stderr.decode()
        state = local.get("midway")
        assert state.traffic.serving() == {"v1": 50, "v2": 50}
        assert state.version_names == ["v1", "v2"]
        again = subprocess.run(
            _cli(home, "plan", str(spec_path), "--detailed-exitcode"),
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert again.returncode == 0, again.stdout.decode()  # nothing left to change
        local.delete("midway")
        local.wait_deleted("midway", timeout=60)


def test_gateway_stops_itself_when_its_state_folder_is_deleted(
    tmp_path: Path, versions: Versions
) -> None:
    import shutil

    home = tmp_path / "doomed"
    with local_backend(home) as local:
        Endpoint.create("orphan", versions.echo("v1"), backend=local, timeout=60)
        pids = [local.store.gateway().pid, local.get("orphan").versions[0].details["pid"]]
        local.close()
        shutil.rmtree(home)
        poll(lambda: not any(alive(p) for p in pids if p), "gateway and version gone")
