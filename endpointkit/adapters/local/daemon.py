"""The gateway daemon: one long-lived process per state folder, router and supervisor at once.

`python -m endpointkit.adapters.local.daemon --home DIR` (started on demand by LocalBackend).
It holds an exclusive lock on `DIR/gateway.lock` for its lifetime, so at most one runs per
folder; records its pid, port and a control secret in the state database; starts every
version in state; and reconciles an endpoint whenever a caller asks (`POST /-/reconcile`).
SIGTERM or `POST /-/stop` stops the versions (draining them) and exits. With `--grpc-port` it
also serves gRPC (`_grpc_gateway.py`), its port in `/-/health` and `/-/status`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import secrets
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from endpointkit.adapters.local import _aws, _oip, queue
from endpointkit.adapters.local._grpc_gateway import GrpcGateway, GrpcStartError
from endpointkit.adapters.local._http.server import HttpServer
from endpointkit.adapters.local._logs import limits_from_env, rotate_logs
from endpointkit.adapters.local.gateway import Gateway, Router, TokenBucket
from endpointkit.adapters.local.state import DRAINING, FAILED, READY, STARTING, Store
from endpointkit.adapters.local.supervisor import VersionProcess, kill_group, socket_dir
from endpointkit.state import Status

__all__ = ["Daemon", "main"]

#: Seconds a resize may take beyond its new process's start budget before it is given up.
RESIZE_MARGIN_S = 10.0


class Daemon:
    """Reconciles processes and routes with the state database."""

    def __init__(
        self,
        home: Path,
        *,
        host: str,
        port: int,
        token: str | None,
        seed: int | None,
        start_timeout: float,
        health_interval: float,
        request_timeout: float,
        python: str,
        health_time_scale: float = 1.0,
        grpc_port: int | None = None,
    ) -> None:
        self.home = home
        self.log_limits = limits_from_env()  # logs rotate by size in the sweep (_logs.py)
        self.store = Store(home)
        self.host = host
        self.port = port
        self.secret = secrets.token_hex(16)
        self.router = Router(seed)
        self.gateway = Gateway(
            self.router,
            secret=self.secret,
            token=token,
            request_timeout=request_timeout,
            control=self.control,
            status=self.health,
            ready=lambda: self.ready,
        )
        self.gateway.on_upstream_failure = self._upstream_failed
        if token:  # boto3 cannot send the token: it signs with the folder's AWS key instead
            self.gateway.aws_credentials = _aws.load_credentials(home)
        self.start_timeout = start_timeout
        self.health_interval = health_interval
        self.health_time_scale = health_time_scale
        self.python = python
        self.procs: dict[tuple[str, str], VersionProcess] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.deleting: set[str] = set()  # endpoints being torn down (one task each)
        self.draining: set[tuple[str, str]] = set()  # versions being drained (one task each)
        self.resizing: set[tuple[str, str]] = set()  # versions changing worker count
        # Failed versions this daemon already tried to start again (once per daemon).
        self.gave_up: set[tuple[str, str]] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.ready = False
        self.started_at = time.time()
        self.stop_event = asyncio.Event()
        self.queue = queue.attach(self)  # asynchronous inference: the durable queue
        # The gRPC port (_grpc_gateway.py): asked for (0: any free port) or None; once
        # serving, the port it is on.
        self.grpc_port = grpc_port
        self.grpc: GrpcGateway | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    async def startup(self) -> None:
        self._kill_stale()
        self._spawn_task(self._start_all())
        self._spawn_task(self._sweep())
        self._spawn_task(self.queue.run())

    async def _sweep(self, every: float = 1.0) -> None:
        """Reconcile endpoints left mid-change: a caller that wrote state and was killed
        before telling the daemon (the change is in state, so it is carried out anyway)."""
        while True:
            await asyncio.sleep(every)
            if not self.store.path.exists():
                # The state folder was deleted under us (e.g. a test's temporary folder): no
                # one can reach or stop this gateway any more, so it stops itself.
                print(f"{self.store.path} is gone; stopping", file=sys.stderr, flush=True)
                self.stop_event.set()
                return
            try:
                for row in self.store.endpoints():
                    unsettled = row.status in (Status.CREATING, Status.UPDATING, Status.DELETING)
                    if unsettled and not self._lock(row.name).locked():
                        await self.reconcile(row.name)
                rotate_logs(self.home / "logs", *self.log_limits)
            except Exception as exc:  # keep sweeping; a bad row must not stop the daemon
                print(f"sweep failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    async def _start_all(self) -> None:
        for row in self.store.endpoints():
            await self.reconcile(row.name)
        pending = [p.settled.wait() for p in self.procs.values()]
        if pending:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*pending), self.start_timeout + 5)
        self.ready = True
        self.store.set_gateway_ready(os.getpid())

    async def shutdown(self) -> None:
        await self.queue.stop()  # deliveries in flight finish before their versions stop
        await asyncio.gather(
            *(proc.stop(drain=True, grace=10) for proc in self.procs.values()),
            return_exceptions=True,
        )
        await self.gateway.drain_shadows()
        with contextlib.suppress(OSError):  # the version sockets' folder, once empty
            folder = socket_dir(self.home)
            if folder is not None:
                folder.rmdir()
        with contextlib.suppress(sqlite3.Error):  # the state folder may be gone
            self.store.clear_gateway(os.getpid())

    def _kill_stale(self) -> None:
        """Version processes a killed daemon left behind (no PR_SET_PDEATHSIG off Linux), and
        the sockets they listened on."""
        for row in self.store.endpoints():
            for version in row.versions:
                where = version.socket or version.port
                if version.pid is None or where is None:
                    continue
                try:
                    cmdline = Path(f"/proc/{version.pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"endpointkit.serving" in cmdline and f"{where}".encode() in cmdline:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(version.pid, signal.SIGKILL)
                    kill_group(version.pid)  # its workers and resource tracker too
        with contextlib.suppress(OSError):
            folder = socket_dir(self.home)
            for stale in folder.glob("*.sock") if folder is not None else ():
                stale.unlink()  # one daemon per home: no version of it runs now

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _upstream_failed(self, endpoint: str, version: str) -> None:
        proc = self.procs.get((endpoint, version))
        if proc is not None:
            proc.poke.set()

    def health(self) -> dict[str, Any]:
        return {
            "ok": True,
            "pid": os.getpid(),
            "ready": self.ready,
            "port": self.port,
            "grpc_port": self.grpc.port if self.grpc is not None else None,
        }

    # -- control routes ---------------------------------------------------------------------------

    async def control(self, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        if path == "/-/reconcile":
            name = query.get("endpoint")
            names = [name] if name else [row.name for row in self.store.endpoints()]
            for each in names:
                await self.reconcile(each)
            return 200, {"ok": True}
        if path == "/-/status":
            return 200, self.status()
        if path == "/-/stop":
            self.stop_event.set()
            return 200, {"ok": True, "stopping": True}
        return 404, {"error": f"no control route {path}"}

    def status(self) -> dict[str, Any]:
        routes = self.router.stats()
        for (endpoint, version), proc in self.procs.items():
            info = routes.setdefault(endpoint, {"versions": {}})["versions"].setdefault(version, {})
            info.update({"pid": proc.pid, "restarts": proc.restarts, "log": str(proc.log_path)})
        return {
            "pid": os.getpid(),
            "host": self.host,
            "port": self.port,
            "url": f"http://{'127.0.0.1' if self.host in ('0.0.0.0', '::') else self.host}:"
            f"{self.port}",
            "home": str(self.home),
            "started_at": self.started_at,
            "uptime_s": round(time.time() - self.started_at, 1),
            "ready": self.ready,
            "auth": self.gateway.token is not None,
            "grpc_port": self.grpc.port if self.grpc is not None else None,
            "endpoints": routes,
        }

    # -- reconcile --------------------------------------------------------------------------------

    def _lock(self, name: str) -> asyncio.Lock:
        lock = self.locks.get(name)
        if lock is None:
            lock = self.locks[name] = asyncio.Lock()
        return lock

    async def reconcile(self, name: str) -> None:
        """Make processes and routes match the stored endpoint. Quick: long work runs in tasks."""
        async with self._lock(name):
            row = self.store.endpoint(name)
            if row is None or row.status is Status.DELETING:
                self.router.routes.pop(name, None)  # new requests: 404 from now on
                doomed = [p for (ep, _), p in self.procs.items() if ep == name]
                if (doomed or row is not None) and name not in self.deleting:
                    self.deleting.add(name)
                    self._spawn_task(self._delete(name, doomed, row is not None))
                return
            route = self.router.route(name)
            wanted = {v.name: v for v in row.versions}
            for version in row.versions:
                key = (name, version.name)
                upstream = route.upstream(version.name)
                if version.phase == FAILED:
                    if key not in self.procs and key not in self.gave_up:
                        self._start(name, version.spec, upstream)
                elif version.phase in (STARTING, READY):
                    if key not in self.procs:
                        self._start(name, version.spec, upstream)
                    elif (
                        version.phase == READY
                        and key not in self.resizing
                        and self.procs[key].spec.scaling != version.spec.scaling
                    ):
                        self.resizing.add(key)
                        self._spawn_task(self._resize(name, self.procs[key], version.spec))
                elif version.phase == DRAINING:
                    upstream.draining = True
                    proc = self.procs.get(key)
                    if proc is None:
                        self.store.drop_version(name, version.name)
                        route.upstreams.pop(version.name, None)
                    elif key not in self.draining:
                        self.draining.add(key)
                        self._spawn_task(self._drain(name, version.name, proc))
            for (ep, version_name), proc in list(self.procs.items()):
                if (
                    ep == name
                    and version_name not in wanted
                    and (ep, version_name) not in (self.draining)
                ):
                    self.draining.add((ep, version_name))
                    self._spawn_task(self._drain(name, version_name, proc))
            ready = {v.name for v in row.versions if v.phase == READY}
            route.traffic = [(v, w) for v, w in row.traffic.serving().items() if v in ready]
            route.shadow = (
                (row.shadow.version, row.shadow.sample_percent)
                if row.shadow is not None and row.shadow.version in ready
                else None
            )
            limit = row.rate_limit
            if limit is None:
                route.bucket = None
            elif (
                route.bucket is None
                or route.bucket.rate != limit["rps"]
                or route.bucket.burst != max(1.0, limit["burst"])
            ):
                route.bucket = TokenBucket(limit["rps"], limit["burst"])
            self._settle(name)

    def _settle(self, name: str) -> None:
        row = self.store.endpoint(name)
        if row is None or row.status not in (Status.CREATING, Status.UPDATING):
            return
        if any(v.phase in (STARTING, DRAINING) for v in row.versions):
            return
        if any(ep == name for ep, _ in self.resizing):
            return
        self.store.settle(name, row.generation)

    def _start(self, name: str, spec: Any, upstream: Any) -> None:
        key = (name, spec.name)
        upstream.model = _oip.model_name(spec.effective_env())  # its OIP routes' model

        async def on_ready(first: bool) -> None:
            row = self.store.endpoint(name)
            version = row.version(spec.name) if row is not None else None
            if version is not None and version.phase == STARTING:
                self.store.commit_deploy(name, spec.name, proc.start_seconds)
            elif version is not None and version.phase == FAILED:
                self.store.recover(
                    name,
                    spec.name,
                    f"version {spec.name} started again by gateway pid {os.getpid()} after "
                    f"failing (ready in {proc.start_seconds:.2f} s)",
                )
            elif version is not None and first:
                # Ready in state but new here: this gateway started it again (after a stop or
                # a crash of the previous gateway).
                self.store.set_health(
                    name,
                    spec.name,
                    True,
                    event=(
                        "restarted",
                        f"version {spec.name} started again by gateway pid {os.getpid()} "
                        f"(ready in {proc.start_seconds:.2f} s)",
                    ),
                )
            await self.reconcile(name)

        async def on_failed(reason: str, log_path: str) -> None:
            self.procs.pop(key, None)
            row = self.store.endpoint(name)
            version = row.version(spec.name) if row is not None else None
            if version is not None and version.phase in (READY, FAILED):
                # Deployed before, started again from state (a new gateway): it keeps its
                # place and share in the spec, shown failed; the next gateway tries again.
                self.gave_up.add(key)
                upstream.healthy = False
                self.store.fail_restart(name, spec.name, reason, log_path)
                await self.reconcile(name)
                return
            upstream.draining = True
            self.store.fail_deploy(name, spec.name, reason, log_path)
            route = self.router.routes.get(name)
            if route is not None:
                route.upstreams.pop(spec.name, None)
            await self.reconcile(name)

        proc = VersionProcess(
            endpoint=name,
            spec=spec,
            upstream=upstream,
            store=self.store,
            home=self.home,
            python=self.python,
            start_timeout=self.start_timeout,
            health_interval=self.health_interval,
            time_scale=self.health_time_scale,
            on_ready=on_ready,
            on_failed=on_failed,
        )
        self.procs[key] = proc
        proc.start()

    async def _resize(self, name: str, proc: VersionProcess, spec: Any) -> None:
        """Bring a live version to its stored worker count; it keeps serving throughout."""
        before = proc.spec.scaling
        # Bounded: a replacement that is not serving by then is given up (the old process
        # keeps serving); the drain of the old one after the swap has its own bound.
        bound = proc.start_timeout + proc.check_timeout + RESIZE_MARGIN_S
        try:
            ok, reason = await proc.resize(spec, timeout=bound)
            workers = spec.resources.min_replicas
            message = (
                f"scaled from {before.min_replicas if before else '?'} to {workers} worker "
                f"process{'es' if workers > 1 else ''} in place (new process ready in "
                f"{proc.start_seconds:.2f} s)"
                if ok
                else f"scaling {spec.name} failed, the old process keeps serving: {reason}"
            )
            self.store.finish_scale(name, proc.spec, ok=ok, message=message)
        finally:
            self.resizing.discard((name, spec.name))
        await self.reconcile(name)

    async def _drain(self, name: str, version: str, proc: VersionProcess) -> None:
        try:
            await proc.stop(drain=True)
        finally:
            self.draining.discard((name, version))
        self.procs.pop((name, version), None)
        route = self.router.routes.get(name)
        if route is not None:
            route.upstreams.pop(version, None)
        row = self.store.endpoint(name)
        if row is not None and row.version(version) is not None:
            self.store.drop_version(name, version)
        await self.reconcile(name)

    async def _delete(self, name: str, procs: list[VersionProcess], finish: bool) -> None:
        try:
            await asyncio.gather(*(p.stop(drain=True) for p in procs), return_exceptions=True)
            for key in [k for k in self.procs if k[0] == name]:
                self.procs.pop(key, None)
            if finish:
                self.store.finish_delete(name)
        finally:
            self.deleting.discard(name)


# -- process entry point ------------------------------------------------------------------------


def _bind(host: str, port: int, remembered: int | None) -> socket.socket:
    for candidate in ([port] if port else []) + ([remembered] if remembered else []) + [0]:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError:
            sock.close()
            if candidate == port and port:
                raise
            continue
        sock.listen(2048)
        sock.set_inheritable(False)
        return sock
    raise OSError(f"cannot bind {host}")  # unreachable: port 0 always binds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m endpointkit.adapters.local.daemon")
    parser.add_argument("--home", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--start-timeout", type=float, default=60.0)
    parser.add_argument("--health-interval", type=float, default=1.0)
    parser.add_argument("--health-time-scale", type=float, default=1.0)
    parser.add_argument("--request-timeout", type=float, default=60.0)
    parser.add_argument(
        "--grpc-port", type=int, default=None, help="serve gRPC too, on this port (0: any free)"
    )
    args = parser.parse_args(argv)
    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    lock = open(home / "gateway.lock", "a+")  # noqa: SIM115 - held for the process lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"a gateway already runs for {home}", file=sys.stderr)
        return 0
    store = Store(home)
    sock = _bind(args.host, args.port, store.gateway().port)
    port = int(sock.getsockname()[1])
    daemon = Daemon(
        home,
        host=args.host,
        port=port,
        token=os.environ.pop("ENDPOINTKIT_LOCAL_TOKEN", None) or None,
        seed=args.seed,
        start_timeout=args.start_timeout,
        health_interval=args.health_interval,
        health_time_scale=args.health_time_scale,
        request_timeout=args.request_timeout,
        python=sys.executable,
        grpc_port=args.grpc_port,
    )
    store.set_gateway(pid=os.getpid(), host=args.host, port=port, secret=daemon.secret)
    store.close()
    print(f"endpointkit gateway pid {os.getpid()} on {args.host}:{port} for {home}", flush=True)
    try:
        import uvloop

        uvloop.run(_serve(daemon, sock))
    except ImportError:
        asyncio.run(_serve(daemon, sock))
    return 0


async def _serve(daemon: Daemon, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stop_event.set)
    server = HttpServer(daemon.gateway.handle)
    if daemon.grpc_port is not None:  # before startup: ready means every port serves
        grpc = GrpcGateway(daemon.gateway, daemon.host, daemon.grpc_port)
        try:
            port = await grpc.start()
        except GrpcStartError as exc:
            print(f"cannot start the gRPC port: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        daemon.grpc = grpc
        print(f"endpointkit gateway serves gRPC on {daemon.host}:{port}", flush=True)
    await daemon.startup()
    await server.start(sock)
    await daemon.stop_event.wait()
    if daemon.grpc is not None:
        await daemon.grpc.stop()
    await server.shutdown()
    await daemon.shutdown()


if __name__ == "__main__":
    sys.exit(main())
