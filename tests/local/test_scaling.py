"""In-place scaling on the local backend: a version's worker count changes behind the gateway
without a dropped request, and a replacement that cannot start leaves the old process serving.

Real processes: the gateway, the version servers and their uvicorn worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from endpointkit.adapters.local._http.client import Pool
from endpointkit.adapters.local._http.server import HttpServer
from endpointkit.adapters.local.gateway import Gateway, Router
from endpointkit.adapters.local.supervisor import free_port
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
    # No retries: Endpoint.predict would otherwise hide a dropped request behind a retry.
    with Load(Endpoint(ep.name, local, invoke_attempts=1)) as load:
        time.sleep(0.3)
        state = ep.scale("v1", 2, timeout=60)
        served_before = len(load.answers)
        deadline = time.monotonic() + 10
        while len(load.answers) < served_before + 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert load.errors == []
    assert len(load.answers) >= served_before + 20  # the new process answered too
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


def _gone(*pids: int, limit: float = 15.0) -> list[int]:
    """The pids still alive after waiting up to `limit` seconds for all of them to exit."""
    deadline = time.monotonic() + limit
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_delete_during_a_scale_up_stops_the_old_and_the_new_process(
    local: LocalBackend, versions: Versions, make_endpoint: Callable[..., Endpoint]
) -> None:
    ep = make_endpoint(versions.slow("v1", 2.0))
    old_pid = _pid(local, ep.name, "v1")
    ep.scale("v1", 2, wait=False)
    deadline = time.monotonic() + 10
    while (new_pid := _pid(local, ep.name, "v1")) == old_pid:  # the new one is loading (2 s)
        assert time.monotonic() < deadline, "the replacement process never started"
        time.sleep(0.02)
    survivors: list[int] = []
    try:
        local.delete(ep.name)
        local.wait_deleted(ep.name, timeout=60)
        survivors = _gone(old_pid, new_pid)
        assert survivors == [], f"processes of the deleted version still run: {survivors}"
    finally:
        _kill(survivors)


def test_a_replacement_that_cannot_be_spawned_leaves_the_old_process_supervised(
    local: LocalBackend, versions: Versions, make_endpoint: Callable[..., Endpoint]
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    old_pid = _pid(local, ep.name, "v1")
    row = local.store.endpoint(ep.name)
    assert row is not None
    live = row.version("v1")
    assert live is not None
    assert live.log_path is not None
    # A real spawn failure, no monkeypatching: the supervisor opens the version's log for each
    # new process, and a directory in its place makes that raise IsADirectoryError (an OSError,
    # even for root). The running process keeps its open log file.
    log = Path(live.log_path)
    aside = log.with_name(log.name + ".aside")
    log.rename(aside)
    log.mkdir()
    try:
        with pytest.raises(DeploymentFailed, match="did not take effect") as failure:
            ep.scale("v1", 2, timeout=20)
    finally:
        log.rmdir()
        aside.rename(log)
    assert "Is a directory" in str(failure.value)
    live = ep.status().version("v1")
    assert live is not None
    assert live.replicas == 1
    assert _pid(local, ep.name, "v1") == old_pid
    assert alive(old_pid)
    assert ep.predict([[1.0]]).version == "v1"
    # Still supervised: the same call goes through once the cause is gone.
    assert ep.scale("v1", 2, timeout=60).version("v1").replicas == 2  # type: ignore[union-attr]
    assert _gone(old_pid) == []


def test_scaling_a_crash_looping_version_fails_instead_of_waiting_forever(
    local: LocalBackend, versions: Versions, make_endpoint: Callable[..., Endpoint]
) -> None:
    v1 = versions.echo("v1")
    ep = make_endpoint(v1)
    assert v1.model is not None
    mode = Path(v1.model) / "mode.txt"
    mode.write_text("broken")  # every restart fails to load the model from now on
    try:
        os.kill(_pid(local, ep.name, "v1"), signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not any("restart failed" in e.message for e in ep.history()):
            assert time.monotonic() < deadline, "the supervisor did not try to restart it"
            time.sleep(0.05)
        # Now between restarts that fail (backing off), with no process serving.
        with pytest.raises(DeploymentFailed, match="did not take effect") as failure:
            ep.scale("v1", 2, timeout=20)
    finally:
        mode.write_text("echo")
    assert "model.bin is corrupt" in str(failure.value)
    deadline = time.monotonic() + 30
    while True:  # the supervisor keeps restarting it, and it serves once its model loads
        with contextlib.suppress(Exception):
            if ep.predict([[1.0]]).version == "v1":
                break
        assert time.monotonic() < deadline, "the version did not come back"
        time.sleep(0.2)
    live = ep.status().version("v1")
    assert live is not None
    assert live.replicas == 1


def test_a_failure_on_the_replaced_process_does_not_unroute_the_new_one() -> None:
    """The swap's race, in process: a request picks the version, a resize swaps its process
    while the request is still connecting to the old one, and the old one refuses it. The
    request must go to the new process, which stays routed. (The window is too narrow to hit
    reliably through the daemon, so the swap happens from inside the request here; both servers
    are real sockets on 127.0.0.1.)"""

    async def new_process(method: str, path: str, query: bytes, headers: Any, body: bytes) -> Any:
        return 200, [(b"content-type", b"application/json")], b'{"predictions": ["new"]}'

    async def run() -> tuple[int, bytes, bool]:
        server = HttpServer(new_process)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        await server.start(sock)
        router = Router()
        route = router.route("ep")
        route.traffic = [("v1", 100)]
        upstream = route.upstream("v1")
        upstream.healthy = True
        new_port = sock.getsockname()[1]

        class SwappedWhileConnecting(Pool):
            async def request(self, *args: Any, **kwargs: Any) -> Any:
                upstream.set_port(new_port)  # the resize's swap: this pool is closed now
                return await super().request(*args, **kwargs)  # nobody listens: refused

        upstream.pool = SwappedWhileConnecting(free_port())
        gateway = Gateway(router, secret="test")
        try:
            status, _, answer = await gateway.handle(
                "POST", "/endpoints/ep/predict", b"", [], b'{"instances": [1]}'
            )
        finally:
            upstream.set_port(None)
            await server.shutdown(grace=1)
        assert isinstance(answer, bytes)
        return status, answer, upstream.healthy

    status, answer, healthy = asyncio.run(run())
    assert (status, answer) == (200, b'{"predictions": ["new"]}')
    assert healthy
