"""The gateway daemon outlives the backend object that started it, without a warning."""

from __future__ import annotations

import gc
import subprocess
import sys
import warnings
from pathlib import Path

from endpointkit.adapters.local import LocalBackend
from endpointkit.adapters.local.commands import pid_alive
from tests.local.harness import local_backend, pids_of, stop_everything


def test_a_backend_collected_while_its_gateway_runs_warns_nothing(tmp_path: Path) -> None:
    # a user's test suite with filterwarnings=error fails on a ResourceWarning raised when
    # the daemon's Popen is collected ("subprocess N is still running"): the daemon is
    # detached on purpose and must stay quiet
    home = tmp_path / "home"
    seen: set[int] = set()
    try:
        backend = LocalBackend(home=home, health_interval=0.2, start_timeout=30.0)
        row = backend.ensure_gateway()
        seen |= pids_of(home)
        backend.close()
        gc.collect()  # earlier tests' garbage (their unclosed sockets) warns now, not below
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del backend
            gc.collect()
        # only the daemon's: anything else collected meanwhile is not this test's business
        leaked = [
            str(w.message)
            for w in caught
            if issubclass(w.category, ResourceWarning) and "subprocess" in str(w.message)
        ]
        assert leaked == []
        # the gateway still serves: a new backend on the same home finds it
        with local_backend(home) as again:
            assert again.ensure_gateway().pid == row.pid
    finally:
        assert not stop_everything(home, seen)


def test_exiting_while_the_gateway_runs_warns_nothing(tmp_path: Path) -> None:
    # the interpreter's teardown collects the held Popen too: it must not warn either
    home = tmp_path / "home"
    script = (
        "import sys\n"
        "from endpointkit.adapters.local import LocalBackend\n"
        "b = LocalBackend(home=sys.argv[1], health_interval=0.2, start_timeout=30.0)\n"
        "print(b.ensure_gateway().pid)\n"
        "b.close()\n"
    )
    seen: set[int] = set()
    try:
        done = subprocess.run(
            [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", script, str(home)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        seen |= pids_of(home)
        assert done.returncode == 0, done.stderr
        assert "ResourceWarning" not in done.stderr, done.stderr
        assert "still running" not in done.stderr, done.stderr
        pid = int(done.stdout.split()[-1])
        assert pid_alive(pid)  # the daemon outlives the interpreter that started it
    finally:
        assert not stop_everything(home, seen)
