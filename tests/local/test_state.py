"""SQLite state: versioned schema, atomic changes, and the `endpointkit local` commands."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from endpointkit.adapters.local.commands import main as local_main
from endpointkit.adapters.local.state import MIGRATIONS, SCHEMA_VERSION, Store
from endpointkit.cli import main as cli_main
from endpointkit.errors import ValidationError
from endpointkit.spec import TrafficSplit
from endpointkit.state import Status
from tests.conformance.suite import Versions

pytestmark = pytest.mark.slow  # real processes and sockets


def test_schema_is_versioned_and_newer_state_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    store.close()
    assert Store(tmp_path).schema_version == SCHEMA_VERSION  # reopening migrates nothing
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(ValidationError, match="newer than this endpointkit"):
        Store(tmp_path)


def test_wal_mode_and_private_file(tmp_path: Path) -> None:
    store = Store(tmp_path)
    mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert (tmp_path / "state.db").stat().st_mode & 0o077 == 0
    store.close()


def test_a_change_interrupted_midway_leaves_the_old_state(
    tmp_path: Path, versions: Versions
) -> None:
    store = Store(tmp_path)
    store.insert_endpoint("atomic", versions.echo("v1"), {})
    store.commit_deploy("atomic", "v1")
    events = len(store.events("atomic"))

    def interrupted_change() -> None:
        with store.transaction() as db:
            store.update_endpoint(db, "atomic", traffic=TrafficSplit({}))
            store.record(db, "atomic", "traffic", "half-written change")
            raise RuntimeError("killed mid-change")

    with pytest.raises(RuntimeError):
        interrupted_change()
    row = store.endpoint("atomic")
    assert row is not None
    assert row.traffic.serving() == {"v1": 100}
    assert len(store.events("atomic")) == events
    store.close()


def test_local_status_and_stop_commands(
    tmp_path: Path,
    make_endpoint: Callable[..., Endpoint],
    versions: Versions,
    local: LocalBackend,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    ep.predict([[1.0]])
    assert local_main(["status", "--home", str(local.home), "--output", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["gateway"]["url"] == local.gateway_url()
    info = report["endpoints"][ep.name]
    assert info["status"] == "InService"
    assert info["versions"]["v1"]["healthy"] is True
    assert info["versions"]["v1"]["served"] >= 1
    assert local_main(["status", ep.name, "--home", str(local.home)]) == 0
    text = capsys.readouterr().out
    assert "gateway: http://127.0.0.1:" in text
    assert ep.name in text
    # Through the top-level CLI, which forwards `local ...`; ENDPOINTKIT_HOME picks the folder.
    stopped_home = tmp_path / "idle-home"
    assert cli_main(["local", "stop", "--home", str(stopped_home), "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"stopped": False, "pid": None}


def test_history_and_list_survive_a_gateway_stop(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.echo("v2"), traffic={"v2": 100})
    local.stop_gateway()
    # State reads need no gateway.
    assert local.get(ep.name).traffic.serving() == {"v2": 100}
    assert ep.name in [e.name for e in local.list_endpoints()]
    kinds = [e.kind for e in ep.history()]
    assert kinds[:2] == ["created", "deployed"]
    assert kinds[-1] == "traffic"
    # The next invocation brings the gateway and the versions back.
    assert ep.predict([[1.0]]).version == "v2"
    assert local.get(ep.name).status is Status.IN_SERVICE


def test_gateway_that_cannot_start_fails_fast_with_its_log(tmp_path: Path) -> None:
    import socket

    from endpointkit.errors import Unavailable
    from tests.local.harness import local_backend

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with local_backend(tmp_path / "home", port=port) as backend:
            with pytest.raises(Unavailable, match="exited with code") as caught:
                backend.ensure_gateway(timeout=60)
            assert "Address already in use" in str(caught.value)


def test_concurrent_callers_share_one_gateway(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.local.harness import local_backend

    home = tmp_path / "home"
    code = (
        "import sys; from endpointkit.adapters.local import LocalBackend; "
        "print(LocalBackend(home=sys.argv[1]).ensure_gateway().pid)"
    )
    with local_backend(home):
        callers = [
            subprocess.Popen([sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE)
            for _ in range(3)
        ]
        pids = {int(caller.communicate(timeout=120)[0]) for caller in callers}
        assert len(pids) == 1  # the losers of the start race found the winner
        store = Store(home)
        assert store.gateway().pid in pids
        store.close()


def test_default_home_is_one_per_user_unless_a_project_or_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """State once lived in ./.endpointkit of whatever folder a command ran in, so `list`
    from another folder showed nothing while the first gateway ran (issue 19.4)."""
    from endpointkit.adapters.local.state import default_home

    monkeypatch.delenv("ENDPOINTKIT_HOME", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    one, two = tmp_path / "one", tmp_path / "two" / "deeper"
    for folder in (one, two):
        folder.mkdir(parents=True)
    homes = set()
    for folder in (one, two):
        monkeypatch.chdir(folder)
        homes.add(default_home())
    assert homes == {tmp_path / "state" / "endpointkit"}

    project = tmp_path / "project"
    (project / ".endpointkit").mkdir(parents=True)
    (project / "src" / "models").mkdir(parents=True)
    monkeypatch.chdir(project / "src" / "models")
    assert default_home() == project / ".endpointkit"  # found upward, as git finds .git

    monkeypatch.setenv("ENDPOINTKIT_HOME", str(tmp_path / "explicit"))
    assert default_home() == tmp_path / "explicit"
