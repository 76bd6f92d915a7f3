"""A gateway started again from state, from another directory or with a model gone: every
version comes back, or is shown Failed with its reason; none silently disappears."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from endpointkit import Endpoint
from endpointkit.spec import VersionSpec
from endpointkit.state import Status
from tests.local.harness import alive, faulty, local_backend

pytestmark = pytest.mark.slow  # real processes and sockets


def test_versions_survive_a_restart_elsewhere_or_are_shown_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    v1 = faulty(tmp_path, "v1")
    assert v1.model is not None
    relative = VersionSpec(
        name="v1", model=os.path.relpath(v1.model), predictor=v1.predictor
    )  # the README's own example: a path relative to where the CLI runs
    v2 = faulty(tmp_path, "v2")
    with local_backend(tmp_path / "home", seed=5) as local:
        ep = Endpoint.create("rel", relative, backend=local, timeout=60)
        ep.deploy(v2, traffic=50, timeout=60)
        hash_before = local.get("rel").version("v1").spec_hash  # type: ignore[union-attr]
        assert hash_before == relative.spec_hash  # the user's spec is what identifies it
        local.stop_gateway()
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        seen = {ep.predict([[1]]).version for _ in range(30)}  # starts the gateway again
        assert seen == {"v1", "v2"}
        state = local.get("rel")
        assert state.status is Status.IN_SERVICE
        assert state.raw_status == "InService"

        # A model that is gone: the version cannot start again.
        local.stop_gateway()
        assert v2.model is not None
        Path(v2.model).rename(tmp_path / "moved")
        assert {ep.predict([[1]]).version for _ in range(20)} == {"v1"}
        deadline = time.monotonic() + 30
        while local.get("rel").raw_status != "Degraded" and time.monotonic() < deadline:
            time.sleep(0.1)
        state = local.get("rel")
        assert state.status is Status.DEGRADED
        assert state.raw_status == "Degraded"
        assert local.wait("rel", timeout=5).status is Status.DEGRADED  # settled: no wait
        assert state.traffic.serving() == {"v1": 50, "v2": 50}  # the spec is untouched
        failed = state.version("v2")
        assert failed is not None
        assert failed.status is Status.FAILED
        assert "v2" in str(failed.details["failure_reason"])
        assert state.failure_reason
        assert "v2" in state.failure_reason
        assert any(e.kind == "failed" and e.version == "v2" for e in ep.history())
        url = f"{local.gateway_url()}/endpoints/rel/predict"
        assert httpx.post(url, json={"instances": [1]}, timeout=30).status_code == 200

        # Back once the model is: the next gateway starts it again.
        local.stop_gateway()
        (tmp_path / "moved").rename(v2.model)
        ep.predict([[1]])
        deadline = time.monotonic() + 30
        while local.get("rel").raw_status != "InService" and time.monotonic() < deadline:
            time.sleep(0.1)
        state = local.get("rel")
        assert state.raw_status == "InService"
        assert state.version("v2").status is Status.IN_SERVICE  # type: ignore[union-attr]


def test_a_dead_gateway_is_reported_and_restarted_by_reading_state(tmp_path: Path) -> None:
    v1 = faulty(tmp_path, "v1")
    with local_backend(tmp_path / "home", seed=5) as local:
        ep = Endpoint.create("dead-gw", v1, backend=local, timeout=60)
        pid = local.gateway_status()["pid"]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        state = local.get("dead-gw")  # reading state notices, says so, and restarts it
        assert state.version("v1").details["healthy"] is False  # type: ignore[union-attr]
        events = [e for e in ep.history() if e.kind == "health" and "gateway" in e.message]
        assert events
        assert str(pid) in events[-1].message
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if local.get("dead-gw").version("v1").details["healthy"] is True:  # type: ignore[union-attr]
                break
            time.sleep(0.1)
        assert local.get("dead-gw").version("v1").details["healthy"] is True  # type: ignore[union-attr]
        assert local.store.gateway().pid not in (None, pid)
        assert ep.predict([[1]]).version == "v1"
