"""Start and always stop a local gateway (and its version processes) for one test scope."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from endpointkit.adapters.local import LocalBackend
from endpointkit.adapters.local.commands import main as local_main
from endpointkit.adapters.local.state import Store
from endpointkit.spec import VersionSpec


def pids_of(home: Path) -> set[int]:
    """The daemon and every version process recorded in `home`'s state."""
    store = Store(home)
    try:
        pids = {v.pid for row in store.endpoints() for v in row.versions if v.pid}
        gateway = store.gateway().pid
    finally:
        store.close()
    if gateway:
        pids.add(gateway)
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def stop_everything(home: Path, seen: set[int]) -> list[int]:
    """`endpointkit local stop`, then SIGKILL anything that survived; returns the survivors."""
    seen |= pids_of(home)
    with contextlib.suppress(Exception):
        local_main(["stop", "--home", str(home), "--output", "json"])
    deadline = time.monotonic() + 15
    while any(alive(p) for p in seen) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [p for p in seen if alive(p)]
    for pid in survivors:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return survivors


@contextlib.contextmanager
def local_backend(home: Path, **settings: Any) -> Iterator[LocalBackend]:
    """A LocalBackend on `home`; on exit its gateway and versions are stopped, and no process
    it started may be left running."""
    settings.setdefault("health_interval", 0.2)
    settings.setdefault("start_timeout", 30.0)
    backend = LocalBackend(home=home, **settings)
    seen: set[int] = set()
    try:
        yield backend
        seen |= pids_of(home)
    finally:
        backend.close()
        survivors = stop_everything(home, seen)
    assert not survivors, f"processes left running after local stop: {survivors}"


MODELS = Path(__file__).parent / "models"


def faulty(root: Path, name: str, **env: str) -> VersionSpec:
    """A version whose instances say how to misbehave (models/faulty_predictor.py)."""
    model_dir = root / f"{name}-faulty"
    if not model_dir.exists():
        model_dir.mkdir(parents=True)
        shutil.copy(MODELS / "faulty_predictor.py", model_dir / "faulty_predictor.py")
        (model_dir / "answer.txt").write_text(name)
    return VersionSpec(
        name=name, model=str(model_dir), predictor="faulty_predictor:Faulty", env=env
    )


def deaths(spec: VersionSpec) -> int:
    """How many processes of a `faulty` version were killed by a "die" instance."""
    assert spec.model is not None
    return len(list(Path(spec.model).glob("died-*")))
