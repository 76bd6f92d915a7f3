"""Version processes: start the real serving server, watch its health, restart it with backoff,
drain it on undeploy.

Each version runs `python -m endpointkit.serving` (the container's own server) as a child of
the gateway daemon, listening on a Unix socket in a folder only this user can enter
(`socket_dir`), so the gateway's token guards every way in: any local process could reach a
port on 127.0.0.1 around it, while only this user's processes (which can read the daemon's
environment, token included, anyway) can reach these sockets. Where Unix sockets are
unavailable (not POSIX) a version listens on a free loopback port instead. A version is ready
only when `GET /ping` answers 200. On Linux the child gets SIGTERM if the daemon dies
(PR_SET_PDEATHSIG), so a killed gateway leaves no orphans; the next daemon starts the versions
again from state.

Each version process leads a process group of its own: what it starts (uvicorn's worker
processes, multiprocessing's resource tracker) is in that group, and ending a version ends the
group, so nothing it started outlives it re-parented to PID 1.

A version whose spec names an `image` runs in a container instead (`_container`): the process
supervised is the engine's client (`podman run`, attached), which forwards SIGTERM to the
server; the container, which outlives a killed client, is force-removed whenever its client
ends. Everything else (socket, health checks, restarts, drain, log file) is the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import os
import secrets
import signal
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from endpointkit.adapters.local import _container
from endpointkit.adapters.local._http.client import Address, Pool, UpstreamError, UpstreamTimeout
from endpointkit.adapters.local._http.server import drained
from endpointkit.retry import apoll_until

if TYPE_CHECKING:
    from endpointkit.adapters.local.gateway import Upstream
    from endpointkit.adapters.local.state import Store
    from endpointkit.spec import VersionSpec

__all__ = ["VersionProcess", "free_port", "kill_group", "log_tail", "socket_dir"]

PR_SET_PDEATHSIG = 1
#: Seconds one health check may take unless the version's `health.timeout_s` says otherwise
#: (SageMaker's own /ping limit).
PING_TIMEOUT_S = 2.0
#: Missed checks in a row that take a running version out of routing (at most its
#: `health.failure_threshold`).
UNROUTE_AFTER = 2
#: Seconds a process replaced by a resize has to finish its requests after SIGTERM (then
#: SIGKILL).
RETIRE_GRACE_S = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


#: The longest Unix socket path the kernel takes (sun_path is 108 bytes on Linux, 104 on
#: macOS and the BSDs, with the terminating NUL).
MAX_SOCKET_PATH = 100


def socket_dir(home: Path) -> Path | None:
    """The folder for the version sockets of the state folder `home`, created mode 0700 and
    checked to be a directory of this user's, not a link; None where Unix sockets are
    unavailable (versions then listen on 127.0.0.1 ports).

    Socket paths must fit in sun_path, and a state folder's own path may not, so the folder is
    `endpointkit-<hash of home>` under $XDG_RUNTIME_DIR (a per-user 0700 folder) or else the
    temporary folder. Raises OSError if that name is taken by something that is not ours (in a
    shared /tmp, someone else may create it first: then no version starts, rather than listen
    where they can reach it)."""
    if os.name != "posix" or not hasattr(socket, "AF_UNIX"):
        return None
    digest = hashlib.sha256(f"{os.geteuid()}:{home.resolve()}".encode()).hexdigest()[:16]
    name = f"endpointkit-{digest}"
    folder = Path("/tmp") / name
    for base in (os.environ.get("XDG_RUNTIME_DIR"), tempfile.gettempdir()):
        longest = f"{base}/{name}/{'0' * 12}.sock"
        if base and os.path.isabs(base) and len(longest) <= MAX_SOCKET_PATH:
            folder = Path(base) / name
            break
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise OSError(
            f"{folder} (the folder for version sockets) exists but is not a directory owned by "
            "this user; remove it or set XDG_RUNTIME_DIR to a folder of yours"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(folder, 0o700)
    return folder


def _unlink_socket(path: str | None) -> None:
    """Remove a version's socket file once its process is gone (a no-op if it is not there)."""
    if path is not None:
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)


def log_tail(path: str | Path, lines: int = 15) -> str:
    """The last `lines` lines of a log file ('' if unreadable)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16_384))
            data = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _model_dir(spec: VersionSpec, home: Path) -> str:
    if spec.model is None:
        empty = home / "empty-model"
        empty.mkdir(exist_ok=True)
        return str(empty)
    return spec.model.removeprefix("file://") if spec.model.startswith("file://") else spec.model


class StartFailed(Exception):
    """The process did not become healthy; the message says why (with its last log lines)."""


class VersionProcess:
    """One version's process, kept running until `stop`.

    `on_ready(first)` is awaited each time the process becomes healthy (first=True the first
    time); `on_failed(reason, log_path)` once if the very first start fails.

    The version's `health` overrides the daemon's timings: `startup_timeout_s` the readiness
    wait, `period_s` the interval between checks, `timeout_s` each check's limit, and
    `failure_threshold` makes a process that misses that many checks in a row be restarted
    (without it, a silent process is only taken out of routing until it answers again). Each
    is multiplied by `time_scale` (1.0; tests shrink minutes to seconds).
    """

    def __init__(
        self,
        *,
        endpoint: str,
        spec: VersionSpec,
        upstream: Upstream,
        store: Store,
        home: Path,
        python: str,
        start_timeout: float,
        health_interval: float,
        on_ready: Callable[[bool], Awaitable[None]],
        on_failed: Callable[[str, str], Awaitable[None]],
        time_scale: float = 1.0,
    ) -> None:
        self.endpoint = endpoint
        self.spec = spec
        self.upstream = upstream
        self.store = store
        self.home = home
        self.python = python
        check = spec.health
        self.start_timeout = start_timeout
        self.health_interval = health_interval
        self.check_timeout = PING_TIMEOUT_S
        self.restart_after: int | None = None  # missed checks in a row that restart it
        self.hung_after: int | None = None  # set when _watch killed it for missing checks
        if check is not None:
            if check.startup_timeout_s is not None:
                self.start_timeout = check.startup_timeout_s * time_scale
            if check.period_s is not None:
                self.health_interval = check.period_s * time_scale
            if check.timeout_s is not None:
                self.check_timeout = check.timeout_s * time_scale
            self.restart_after = check.failure_threshold
        self.on_ready = on_ready
        self.on_failed = on_failed
        log_dir = home / "logs" / endpoint
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{spec.name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        # Where the process listens: a Unix socket's path, or a 127.0.0.1 port where there
        # are no Unix sockets.
        self.address: Address | None = None
        self.stopping = False
        self.restarts = 0
        self.settled = asyncio.Event()  # set after the first start succeeded or failed
        self.poke = asyncio.Event()  # the gateway saw a failure: check health now
        self.task: asyncio.Task[None] | None = None
        self.spawned_at = 0.0
        self.start_seconds = 0.0  # process start to first healthy answer, last start
        self.wanted: VersionSpec | None = None  # resize asked for: a spec with other replicas
        self.resized: asyncio.Future[tuple[bool, str]] | None = None
        # While a resize replaces the process: the old one (stop() stops it too), and whether
        # the new one has taken the traffic (the resize can no longer be given up).
        self.retiring: asyncio.subprocess.Process | None = None
        self.swapped = False
        # Container versions: each engine client's pid -> (engine, container, socket folder).
        self.containers: dict[int, tuple[_container.Engine, str, Path]] = {}

    def _stopped(self) -> bool:
        return self.stopping  # a call, so type checkers don't narrow it across awaits

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    # -- the loop -------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._supervise()
        finally:  # however supervision ends, nobody may wait on a resize forever
            self._resized(False, f"version {self.spec.name!r} is no longer supervised")

    def _resized(self, ok: bool, reason: str) -> None:
        """Answer a pending `resize` (once; later answers are ignored)."""
        if self.resized is not None and not self.resized.done():
            self.resized.set_result((ok, reason))

    async def _supervise(self) -> None:
        failures = 0
        first = True
        while not self.stopping:
            try:
                await self._spawn()
                await self._wait_healthy()
            except StartFailed as exc:
                await self._kill()
                if first:
                    self.settled.set()
                    await self.on_failed(str(exc), str(self.log_path))
                    return
                failures += 1
                delay = min(30.0, 0.5 * 2**failures)
                if self.wanted is not None:
                    # A resize asked for while no process serves: say so now rather than
                    # after the restarts stop failing (which may be never).
                    self.wanted = None
                    self._resized(
                        False,
                        f"version {self.spec.name!r} is not serving: it is being restarted "
                        f"and its restart failed ({exc}); scale it once it is healthy again",
                    )
                self._record(False, f"restart failed ({exc}); next try in {delay:g} s")
                await self._sleep(delay)
                continue
            self.upstream.set_port(self.address)
            self.upstream.healthy = True
            self.start_seconds = time.monotonic() - self.spawned_at
            if first:
                first = False
                self.settled.set()
                await self.on_ready(True)
            else:
                self.restarts += 1
                self._record(
                    True, f"version {self.spec.name} restarted (#{self.restarts})", restarted=True
                )
                await self.on_ready(False)
            healthy_since = time.monotonic()
            self.hung_after = None
            code = await self._watch()
            while self.wanted is not None and not self._stopped():
                await self._replace()
                code = await self._watch()
            if self._stopped():
                return
            if time.monotonic() - healthy_since > 60:
                failures = 0
            failures += 1
            delay = min(30.0, 0.25 * 2 ** (failures - 1))
            self.upstream.healthy = False
            if self.proc is not None and self.proc.pid in self.containers:
                await self._end(self.proc, signal.SIGKILL, 0)  # its container and folder
            what = (
                f"stopped answering its health checks ({self.hung_after} missed in a row, "
                "health.failure_threshold) and was killed"
                if self.hung_after is not None
                else f"process exited with code {code}"
            )
            self._record(
                False,
                f"version {self.spec.name} {what}; taken out of routing, restarting in "
                f"{delay:g} s. Log: {self.log_path}",
            )
            await self._sleep(delay)

    def _record(self, healthy: bool, message: str, *, restarted: bool = False) -> None:
        """Store the version's health with an event ("restarted" if `restarted`, else "health")."""
        kind = "restarted" if restarted else "health"
        self.store.set_health(
            self.endpoint, self.spec.name, healthy, event=(kind, message), restarted=restarted
        )

    async def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    async def _spawn(self) -> None:
        """Start the version's process (`self.proc`, at `self.address`). Raises StartFailed if it
        cannot even be started (an OSError: its log cannot be opened, no such python...)."""
        try:
            if self.spec.image is not None:
                await self._exec_container(self.spec.image)
            else:
                await self._exec()
        except _container.NoEngine as exc:
            raise StartFailed(str(exc)) from exc
        except OSError as exc:
            raise StartFailed(
                f"cannot start a process for version {self.spec.name!r}: {exc}"
            ) from exc
        assert self.proc is not None
        self._store_process()

    def _store_process(self) -> None:
        address = self.address
        self.store.set_process(
            self.endpoint,
            self.spec.name,
            pid=self.pid,
            port=address if isinstance(address, int) else None,
            socket=address if isinstance(address, str) else None,
            log_path=str(self.log_path),
        )

    async def _exec(self) -> None:
        self.spawned_at = time.monotonic()
        folder = socket_dir(self.home)
        if folder is None:
            self.address = free_port()
            listen = ["--host", "127.0.0.1", "--port", str(self.address)]
        else:
            # A new name per process: a resize's new process starts beside the old one.
            self.address = str(folder / f"{secrets.token_hex(6)}.sock")
            listen = ["--uds", self.address]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ENDPOINTKIT_", "AIP_"))}
        env["ENDPOINTKIT_REQUEST_LOG"] = "errors"
        env.update(self.spec.effective_env())
        env["ENDPOINTKIT_VERSION"] = self.spec.name
        env.setdefault("PYTHONUNBUFFERED", "1")
        with open(self.log_path, "ab") as log:
            log.write(f"--- starting {self.spec.name} at {listen[-1]}\n".encode())
            log.flush()
            self.proc = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "endpointkit.serving",
                *listen,
                "--model-dir",
                _model_dir(self.spec, self.home),
                "--workers",
                str(self.spec.resources.min_replicas),  # replicas -> worker processes
                "--grace",
                "20",
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                start_new_session=True,  # its own process group: see _end
            )

    async def _exec_container(self, image: str) -> None:
        """Start the version's container; `self.proc` is the engine client that runs it."""
        self.spawned_at = time.monotonic()
        folder = socket_dir(self.home)
        if folder is None:
            raise StartFailed("a version from an image needs Unix sockets (Linux or macOS)")
        engine = await asyncio.to_thread(_container.find_engine)
        # A folder of its own, so the container sees no other version's socket.
        token = secrets.token_hex(5)
        own = folder / token
        os.mkdir(own, 0o700)
        self.address = str(own / "s.sock")
        env = {"ENDPOINTKIT_REQUEST_LOG": "errors", **self.spec.effective_env()}
        env.update(
            ENDPOINTKIT_VERSION=self.spec.name,
            ENDPOINTKIT_UDS=f"{_container.SOCKET_MOUNT}/s.sock",
            ENDPOINTKIT_WORKERS=str(self.spec.resources.min_replicas),
            ENDPOINTKIT_GRACE_S="20",
        )
        name = _container.container_name(self.endpoint, self.spec.name, token)
        args = _container.run_args(
            engine,
            name=name,
            image=image,
            socket_folder=own,
            model_dir=_model_dir(self.spec, self.home),
            env=env,
            labels={
                "io.endpointkit.endpoint": self.endpoint,
                "io.endpointkit.version": self.spec.name,
            },
        )
        client_env = {k: v for k, v in os.environ.items() if not k.startswith("ENDPOINTKIT_")}
        try:
            with open(self.log_path, "ab") as log:
                log.write(f"--- starting {self.spec.name} in container {name} ({image})\n".encode())
                log.flush()
                self.proc = await asyncio.create_subprocess_exec(
                    *args,
                    env=client_env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    preexec_fn=_die_with_parent,  # the client then stops the container
                    start_new_session=True,
                )
        except BaseException:
            os.rmdir(own)
            raise
        self.containers[self.proc.pid] = (engine, name, own)

    async def _end(self, proc: asyncio.subprocess.Process, sig: int, grace: float) -> None:
        """`_end` the process, then remove its container if it ran one."""
        await _end(proc, sig, grace)
        container = self.containers.pop(proc.pid, None)
        if container is not None:
            await _container.remove(*container)

    async def _ping(self, pool: Pool, timeout: float) -> tuple[int, bytes]:
        status, _, body = await pool.request(b"GET", b"/ping", [], b"", timeout)
        return status, body

    async def _wait_healthy(self) -> None:
        """Poll `/ping` until it answers 200. Raises StartFailed (with the last log lines) if
        the process exits, its model fails to load, `stop` is called, or time runs out."""
        proc, address = self.proc, self.address
        assert proc is not None
        assert address is not None
        pool = Pool(address)
        deadline = time.monotonic() + self.start_timeout

        async def ready() -> bool:
            if self.stopping:
                raise StartFailed("stopped while starting")
            if proc.returncode is not None:
                raise StartFailed(
                    f"version {self.spec.name!r} exited with code {proc.returncode} before "
                    f"answering its health check. Last log lines:\n{log_tail(self.log_path)}"
                )
            left = deadline - time.monotonic()
            try:
                status, body = await self._ping(pool, max(0.1, min(PING_TIMEOUT_S, left)))
            except (UpstreamError, UpstreamTimeout):
                return False
            reason = _load_failure(body) if status != 200 else None
            if reason is not None:
                raise StartFailed(
                    f"version {self.spec.name!r} failed to start: {reason}. Last log "
                    f"lines:\n{log_tail(self.log_path)}"
                )
            return status == 200

        def timed_out(_: bool) -> StartFailed:
            source = (
                "its health.startup_timeout_s"
                if self.spec.health and self.spec.health.startup_timeout_s
                else "the local backend's start_timeout"
            )
            return StartFailed(
                f"version {self.spec.name!r} did not answer its health check within "
                f"{self.start_timeout:g} s ({source}). Last log lines:\n"
                f"{log_tail(self.log_path)}"
            )

        try:
            await apoll_until(
                ready, bool, timeout=self.start_timeout, expired=timed_out, first_s=0.02, max_s=0.05
            )
        finally:
            pool.close()

    async def _watch(self) -> int | None:
        """Health-check until the process exits (returns its code) or `stop` is called."""
        assert self.proc is not None
        assert self.address is not None
        proc = self.proc
        pool = Pool(self.address)
        exited = asyncio.ensure_future(proc.wait())
        misses = 0
        try:
            while not self.stopping:
                poked = asyncio.ensure_future(self.poke.wait())
                await asyncio.wait(
                    {exited, poked}, timeout=self.health_interval, return_when="FIRST_COMPLETED"
                )
                poked.cancel()
                self.poke.clear()
                if exited.done():
                    return proc.returncode
                if self.wanted is not None:
                    return None  # _run replaces the process, then watches the new one
                if self._stopped():
                    return None
                try:
                    status, _ = await self._ping(pool, self.check_timeout)
                    ok = status == 200
                except (UpstreamError, UpstreamTimeout):
                    ok = False
                if ok:
                    misses = 0
                    if not self.upstream.healthy and not self.upstream.draining:
                        self.upstream.healthy = True
                        self._record(True, f"version {self.spec.name} is healthy again")
                    continue
                if proc.returncode is not None or exited.done():
                    continue
                misses += 1
                if self.restart_after is not None and misses >= self.restart_after:
                    # Hung, not dead: kill it so the loop in _run starts it again.
                    self.hung_after = misses
                    self.upstream.healthy = False
                    await self._kill()
                    return proc.returncode
                if misses >= min(UNROUTE_AFTER, self.restart_after or UNROUTE_AFTER) and (
                    self.upstream.healthy
                ):
                    self.upstream.healthy = False
                    self._record(
                        False,
                        f"version {self.spec.name} stopped answering health checks; taken out "
                        "of routing until it recovers",
                    )
            return None
        finally:
            pool.close()
            if not exited.done():
                exited.cancel()

    # -- resizing -------------------------------------------------------------------------------

    async def resize(self, spec: VersionSpec, timeout: float | None = None) -> tuple[bool, str]:
        """Serve with `spec`'s worker count: a new process starts beside the running one and
        takes the traffic once healthy; the old one then drains. If the new one fails to start,
        the old one keeps serving. Returns (ok, reason).

        `timeout` bounds the wait until the new process takes the traffic; past it the resize
        is given up (a new process that becomes healthy later is stopped, so the old worker
        count stays true). Once it has taken the traffic, the wait for the old one to drain is
        bounded by RETIRE_GRACE_S."""
        if self.task is None or self.task.done():
            return False, "the version is not running"
        resized: asyncio.Future[tuple[bool, str]] = asyncio.get_running_loop().create_future()
        self.resized = resized
        self.swapped = False
        self.wanted = spec
        self.poke.set()
        try:
            answer: tuple[bool, str] = await asyncio.wait_for(asyncio.shield(resized), timeout)
        except asyncio.TimeoutError:
            pass
        else:
            return answer
        if self.wanted is spec:
            self.wanted = None  # not begun: it never will
        if not resized.done() and not self.swapped:
            resized.set_result(
                (
                    False,
                    f"version {spec.name!r} did not take the new worker count within "
                    f"{timeout:g} s (is it restarting after failures? see {self.log_path}); "
                    "it keeps its old worker count",
                )
            )
        return await resized  # answered, or the old process is draining (bounded)

    async def _replace(self) -> None:
        spec, self.wanted = self.wanted, None
        assert spec is not None
        old_proc, old_address, old_spec = self.proc, self.address, self.spec
        self.retiring = old_proc
        self.spec = spec
        ok, reason = True, ""
        try:
            try:
                await self._spawn()
                await self._wait_healthy()
                if self.resized is not None and self.resized.done():  # given up, or stopped
                    raise StartFailed("the resize was given up before the new process was ready")
            except Exception as exc:  # StartFailed, or a bug: the old process keeps serving
                if self.proc is not old_proc:
                    await self._kill()  # the new process
                self.proc, self.address, self.spec = old_proc, old_address, old_spec
                ok, reason = False, str(exc) or type(exc).__name__
                if not self._stopped():  # (stop() stops the old one too)
                    self._store_process()
                return
            self.start_seconds = time.monotonic() - self.spawned_at
            self.swapped = True
            self.upstream.set_port(self.address)  # new requests go to the new process
            # A request that failed on the old process (SIGTERMed below, or already gone) may
            # have taken the version out of routing; the new one just answered its check.
            if not self.upstream.draining:
                self.upstream.healthy = True
            if old_proc is not None:
                # SIGTERM: the server finishes the requests it holds, then exits.
                await self._end(old_proc, signal.SIGTERM, RETIRE_GRACE_S)
                _unlink_socket(old_address if isinstance(old_address, str) else None)
        finally:
            self.retiring = None
            self._resized(ok, reason)

    # -- stopping -------------------------------------------------------------------------------

    async def stop(self, *, drain: bool = True, grace: float = 30.0) -> None:
        """Stop routing to it, let in-flight requests finish (`drain`), then SIGTERM the process
        (SIGKILL after 10 s), and the one a resize is replacing, if any."""
        self.upstream.draining = True
        if self.resized is not None and not self.resized.done():
            self.resized.set_result((False, "the version was stopped while scaling"))
        if drain:
            await drained(lambda: self.upstream.inflight, grace)
        self.upstream.healthy = False
        self.stopping = True
        self.poke.set()
        ends = [self._kill(term_first=True)]
        if self.retiring is not None:  # a resize's old process, still serving or draining
            ends.append(self._end(self.retiring, signal.SIGTERM, 10))
        await asyncio.gather(*ends)
        if self.task is not None and not self.task.done():
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self.task, 5)
        if self.upstream.pool is not None:
            self.upstream.pool.close()

    async def _kill(self, *, term_first: bool = False) -> None:
        if self.proc is not None:
            await self._end(self.proc, signal.SIGTERM if term_first else signal.SIGKILL, 10)
            _unlink_socket(self.address if isinstance(self.address, str) else None)


async def _end(proc: asyncio.subprocess.Process, sig: int, grace: float) -> None:
    """Send `sig` to the process and wait for it to exit (SIGKILL after `grace` seconds);
    then SIGKILL whatever is left of its process group (workers, the resource tracker). A
    SIGTERM goes to the leader only: uvicorn's supervisor drains its workers itself."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            if sig == signal.SIGKILL:
                kill_group(proc.pid)
            else:
                proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    kill_group(proc.pid)


def kill_group(leader: int) -> None:
    """SIGKILL the process group `leader` leads (a no-op once the group is empty). The
    group's id stays reserved while any member lives, so this never hits another group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)


def _load_failure(body: bytes) -> str | None:
    """The serving server's reason when its model failed to load (a 503 /ping body)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(payload, dict) and payload.get("code") == "model_load_failed":
        return str(payload.get("error") or "the model failed to load")
    return None
