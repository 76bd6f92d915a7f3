"""Shared test set-up: a clean environment for every test."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clean_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No cloud credentials or endpointkit settings leak in from the developer's shell."""
    for key in list(os.environ):
        if key.startswith(("AWS_", "GOOGLE_", "CLOUDSDK_", "ENDPOINTKIT_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ENDPOINTKIT_HOME", str(tmp_path / "endpointkit-home"))


#: Every process a local-backend test module starts inherits this variable (the gateway
#: daemon, its version processes, and whatever those start: uvicorn's workers, the
#: multiprocessing resource tracker), so processes re-parented to PID 1 are found too.
LEAK_TAG = "PYTEST_ENDPOINTKIT_LEAK_TAG"


def _tagged(tag: str) -> list[int]:
    """Live processes (zombies have no environment) whose environment carries `tag`."""
    needle = f"{LEAK_TAG}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


@pytest.fixture(autouse=True, scope="module")
def no_leaked_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a local-backend test module that leaves any process it started running."""
    path = str(request.path)
    local = "/tests/local/" in path or path.endswith("test_local.py")
    if not local or not Path("/proc/self/environ").exists():
        yield
        return
    tag = uuid.uuid4().hex
    os.environ[LEAK_TAG] = tag
    try:
        yield
    finally:
        del os.environ[LEAK_TAG]
    deadline = time.monotonic() + 10  # processes that are exiting get a moment
    leaked = _tagged(tag)
    while leaked and time.monotonic() < deadline:
        time.sleep(0.1)
        leaked = _tagged(tag)
    if leaked:
        described = []
        for pid in leaked:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                described.append(f"{pid}: {cmdline.decode(errors='replace')[:160]}")
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
        if described:
            pytest.fail("processes left running:\n" + "\n".join(described), pytrace=False)
