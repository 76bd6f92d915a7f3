"""The gateway daemon outlives the backend object that started it, without a warning."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

from endpointkit.adapters.local import LocalBackend
from tests.local.harness import local_backend, pids_of, stop_everything


def test_a_backend_collected_while_its_gateway_runs_warns_nothing(tmp_path: Path) -> None:
    # a user's test suite with filterwarnings=error fails on a ResourceWarning raised when
    # the daemon's Popen is collected ("subprocess N is still running"): the daemon is
    # detached on purpose and must stay quiet
    home = tmp_path / "home"
    seen: set[int] = set()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            backend = LocalBackend(home=home, health_interval=0.2, start_timeout=30.0)
            row = backend.ensure_gateway()
            seen |= pids_of(home)
            backend.close()
            del backend
            gc.collect()
        leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        assert leaked == []
        # the gateway still serves: a new backend on the same home finds it
        with local_backend(home) as again:
            assert again.ensure_gateway().pid == row.pid
    finally:
        assert not stop_everything(home, seen)
