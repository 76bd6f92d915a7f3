"""`LocalBackend`: the Backend contract on this machine.

Writes desired state to SQLite (one transaction per change), then asks the gateway daemon to
reconcile over its loopback control route; the daemon starts, health-checks, restarts and
drains the version processes and records what happened. `get` and `history` read SQLite, so
every process (CLI, notebook, daemon) sees the same endpoints.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from endpointkit.adapters._sagemaker_only import warn_sagemaker_only
from endpointkit.adapters.base import Backend
from endpointkit.adapters.limits import LOCAL
from endpointkit.adapters.local import commands, queue
from endpointkit.adapters.local.commands import pid_alive
from endpointkit.adapters.local.state import (
    DRAINING,
    FAILED,
    STARTING,
    EndpointRow,
    GatewayRow,
    Store,
    default_home,
)
from endpointkit.async_invocation import AsyncInvocation, AsyncOutcome
from endpointkit.errors import (
    ModelError,
    NotFound,
    NotReady,
    PermissionDenied,
    Throttled,
    Timeout,
    Unavailable,
    ValidationError,
)
from endpointkit.invocation import InvokeRequest, InvokeResult, StreamResult
from endpointkit.retry import poll_until
from endpointkit.spec import Scaling, Shadow, TrafficSplit, VersionSpec
from endpointkit.state import EndpointState, Event, Status, VersionState

__all__ = ["LocalBackend"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


_DETACHED: list[subprocess.Popen[bytes]] = []
_DETACHED_LOCK = threading.Lock()


def _keep_detached(daemon: subprocess.Popen[bytes]) -> None:
    """Hold a started gateway daemon's ``Popen`` for the life of this interpreter.

    The daemon is meant to outlive the backend object that started it; collecting its
    ``Popen`` while it runs raises ResourceWarning ("subprocess N is still running"), which a
    test suite run with ``filterwarnings = error`` reports as a failure."""
    _reap_detached()
    with _DETACHED_LOCK:
        _DETACHED.append(daemon)


def _reap_detached() -> None:
    """Reap held daemons that exited (no zombie, whose pid would read as alive) and drop them."""
    with _DETACHED_LOCK:
        _DETACHED[:] = [p for p in _DETACHED if p.poll() is None]


def _leave_detached() -> None:
    """At exit: the daemons still running stay running, on purpose; marked so that their
    ``Popen``, collected while the interpreter shuts down, does not warn."""
    with _DETACHED_LOCK:
        for daemon in _DETACHED:
            if daemon.poll() is None:  # reaps one that exited; one still running is left
                daemon.returncode = 0  # not ours to wait for any more
        _DETACHED.clear()


atexit.register(_leave_detached)


class LocalBackend(Backend):
    """Real serving processes on this machine behind one gateway.

    Settings: `home` (state folder; default `ENDPOINTKIT_HOME`, else a `.endpointkit` folder in this
    project, else `~/.local/state/endpointkit`: see `state.default_home`), `host` and
    `port` of the gateway (default 127.0.0.1 and a free port, remembered), `token` (bearer
    token the gateway requires; default `ENDPOINTKIT_LOCAL_TOKEN`), `seed` (routing and shadow
    sampling), `start_timeout` (seconds a version may take to answer its health check),
    `health_interval` (seconds between health checks; a version's `health` overrides both, see
    supervisor.VersionProcess), `health_time_scale` (multiplies the seconds in versions'
    `health`; 1.0, tests use less to run a minute's budget in a second), `request_timeout`
    (seconds a version may take to answer), `python` (interpreter for the gateway and the
    versions), `grpc_port` (serve gRPC on this port too, 0 for any free one; default off: see
    `_grpc_gateway.py`). The gateway settings apply when this instance starts the gateway; a
    running one keeps its own until `endpointkit local stop`. Extra methods: `set_rate_limit`,
    `gateway_status`, `gateway_url`, `gateway_grpc_target`, `stop_gateway`.
    """

    name = "local"
    capabilities = LOCAL.capabilities
    max_payload_bytes = LOCAL.max_payload_bytes
    max_custom_attributes = LOCAL.max_custom_attributes
    # A status poll is one local SQLite read: a cloud-sized backoff would add seconds to a
    # deploy that takes one.
    poll_first_s = 0.02
    poll_max_s = 0.1
    async_poll_first_s = 0.005
    async_poll_max_s = 0.2
    #: Deliveries of a queued request before it is dead-lettered, and the first backoff
    #: between them (doubling); see adapters/local/queue.py.
    async_max_attempts = queue.DEFAULT_MAX_ATTEMPTS
    async_backoff_s = queue.DEFAULT_BACKOFF_S

    def __init__(
        self,
        *,
        home: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        seed: int | None = None,
        start_timeout: float = 60.0,
        health_interval: float = 1.0,
        health_time_scale: float = 1.0,
        request_timeout: float = 60.0,
        python: str | None = None,
        grpc_port: int | None = None,
    ) -> None:
        self.home = Path(home).absolute() if home is not None else default_home()
        self.host = host
        self.port = port
        self.token = token if token is not None else os.environ.get("ENDPOINTKIT_LOCAL_TOKEN")
        if host not in LOOPBACK and not self.token:
            raise ValidationError(
                f"the local gateway would listen on {host} without a bearer token.",
                hint="Set token= (or ENDPOINTKIT_LOCAL_TOKEN), or keep host=127.0.0.1.",
                backend="local",
            )
        self.seed = seed
        self.start_timeout = start_timeout
        self.health_interval = health_interval
        if not health_time_scale > 0:
            raise ValidationError(
                f"health_time_scale must be above 0, got {health_time_scale!r}.", backend="local"
            )
        self.health_time_scale = health_time_scale
        self.request_timeout = request_timeout
        self.python = python or sys.executable
        self.grpc_port = grpc_port
        self._store: Store | None = None
        self._http: httpx.Client | None = None
        self._ahttp: httpx.AsyncClient | None = None
        self._ahttp_loop: asyncio.AbstractEventLoop | None = None
        self._gateway: GatewayRow | None = None
        self._daemon: subprocess.Popen[bytes] | None = None
        self._queue: queue.QueueStore | None = None

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.home)
        return self._store

    def close(self) -> None:
        """Close connections and the state database (the gateway keeps running)."""
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._queue is not None:
            self._queue.close()
            self._queue = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=httpx.Timeout(self.request_timeout + 5, connect=5))
        return self._http

    def gateway_url(self, *, start: bool = True) -> str:
        """The gateway's base URL (starting the daemon if needed and `start`)."""
        row = self.ensure_gateway() if start else self.store.gateway()
        if row.url is None:
            raise NotReady(
                f"no local gateway runs for {self.home}.",
                hint="Any endpointkit command on the local backend starts it.",
                backend=self.name,
            )
        return row.url

    def _gateway_for(self, name: str, operation: str) -> str:
        """The gateway's URL for a request to `name`. Before this process has a gateway, an
        endpoint that does not exist is NotFound here: no daemon starts for it."""
        if self._gateway is None:
            self._row(name, operation)
        return self.gateway_url()

    def _alive(self, row: GatewayRow) -> bool:
        if row.pid is None or row.url is None or not pid_alive(row.pid):
            return False
        try:
            answer = self._client().get(f"{row.url}/-/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200 and answer.json().get("pid") == row.pid

    def ensure_gateway(self, timeout: float | None = None) -> GatewayRow:
        """Return the running gateway, starting the daemon (detached) if none runs; waits until
        it has started the versions in state."""
        _reap_detached()  # a daemon that exited is reaped, so its pid reads as gone
        row = self._gateway
        if row is not None and row.pid is not None and pid_alive(row.pid):
            return row
        row = self.store.gateway()
        if not self._alive(row):
            self._spawn_daemon()
        limit = timeout if timeout is not None else self.start_timeout + 15
        log = self.home / "logs" / "gateway.log"

        def fetch() -> tuple[GatewayRow, bool]:
            current = self.store.gateway()
            if current.ready and self._alive(current):
                return current, True
            daemon = self._daemon
            if daemon is not None and daemon.poll() not in (None, 0):
                from endpointkit.adapters.local.supervisor import log_tail

                self._daemon = None
                raise Unavailable(
                    f"the local gateway for {self.home} exited with code {daemon.returncode} "
                    f"while starting. Last log lines:\n{log_tail(log)}",
                    hint=f"Fix the cause (e.g. port {self.port} in use: choose another port=).",
                    backend=self.name,
                    operation="start gateway",
                )
            return current, False

        def expired(_: tuple[GatewayRow, bool]) -> Exception:
            return Timeout(
                f"the local gateway for {self.home} did not start within {limit:g} s.",
                hint=f"See its log: {log}",
                backend=self.name,
                operation="start gateway",
            )

        row, _ = poll_until(
            fetch, lambda seen: seen[1], timeout=limit, expired=expired, first_s=0.02, max_s=0.2
        )
        self._gateway = row
        return row

    def _spawn_daemon(self) -> None:
        log_dir = self.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.token:
            env["ENDPOINTKIT_LOCAL_TOKEN"] = self.token
        args = [
            self.python,
            "-m",
            "endpointkit.adapters.local.daemon",
            "--home",
            str(self.home),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--start-timeout",
            str(self.start_timeout),
            "--health-interval",
            str(self.health_interval),
            "--health-time-scale",
            str(self.health_time_scale),
            "--request-timeout",
            str(self.request_timeout),
        ]
        if self.seed is not None:
            args += ["--seed", str(self.seed)]
        if self.grpc_port is not None:
            args += ["--grpc-port", str(self.grpc_port)]
        with open(log_dir / "gateway.log", "ab") as log:
            daemon = self._daemon = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # survives the CLI that started it
                close_fds=True,
            )
        _keep_detached(daemon)

    def _control(self, path: str, **query: str) -> Any:
        """Call a control route on the gateway (starting it if needed; once more if it went
        away meanwhile)."""
        for attempt in (1, 2):
            row = self.ensure_gateway()
            try:
                answer = self._client().post(
                    f"{row.url}{path}",
                    params=query,
                    headers={"x-endpointkit-secret": row.secret or ""},
                    timeout=30.0,
                )
            except httpx.HTTPError as exc:
                self._gateway = None
                if attempt == 2:
                    raise Unavailable(
                        f"cannot reach the local gateway at {row.url} for {path}: {exc}",
                        hint="Check 'endpointkit local status' and its log in "
                        f"{self.home / 'logs' / 'gateway.log'}.",
                        backend=self.name,
                    ) from None
                continue
            if answer.status_code != 200:
                raise Unavailable(
                    f"the local gateway answered {answer.status_code} to {path}: "
                    f"{answer.text[:300]}",
                    backend=self.name,
                )
            return answer.json()
        raise AssertionError("unreachable")  # pragma: no cover

    def gateway_status(self) -> dict[str, Any]:
        """The gateway's live view: pid, URL, and per endpoint and version the health,
        in-flight, served, shadowed and error counts (starts the gateway if needed)."""
        status: dict[str, Any] = self._control("/-/status")
        return status

    def gateway_grpc_target(self) -> str:
        """`host:port` of the gateway's gRPC port (starting the gateway if needed), for
        `grpc.insecure_channel`. Raises NotReady if the running gateway serves no gRPC."""
        status = self.gateway_status()
        port = status.get("grpc_port")
        if not port:
            raise NotReady(
                f"the local gateway for {self.home} serves no gRPC.",
                hint="Stop it ('endpointkit local stop') and start it with "
                "LocalBackend(grpc_port=0) (or a fixed port).",
                backend=self.name,
            )
        host = status.get("host") or "127.0.0.1"
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def stop_gateway(self, timeout: float = 30.0) -> None:
        """Stop the gateway and every version process (state is kept; the next call restarts
        them)."""
        self._gateway = None
        commands.stop(self.home, "quiet", timeout)

    def _reconcile(self, name: str) -> EndpointState:
        self._control("/-/reconcile", endpoint=name)
        return self.get(name)

    def _row(self, name: str, operation: str) -> EndpointRow:
        row = self.store.endpoint(name)
        if row is None:
            raise self.not_found(name, operation)
        return row

    # -- primitives -------------------------------------------------------------------------------

    def get(self, name: str) -> EndpointState:
        self._revive()
        return self._state(self._row(name, "get"))

    def list_endpoints(self) -> list[EndpointState]:
        self._revive()
        return [self._state(row) for row in self.store.endpoints()]

    def _revive(self) -> None:
        """A gateway that died without stopping (killed, OOM) leaves state saying its versions
        serve: record that it died, mark them down, and start a new one (not waited for; it
        starts the versions again from state)."""
        row = self.store.gateway()
        if row.pid is None:
            return
        _reap_detached()  # our own children that exited are reaped, so they read as gone
        if commands.running(row.pid):
            return
        if self.store.gateway_died(row.pid):
            self._gateway = None
            self._spawn_daemon()

    def delete(self, name: str) -> None:
        self._row(name, "delete")
        self.store.mark_deleting(name)
        self._control("/-/reconcile", endpoint=name)

    def history(self, name: str) -> list[Event]:
        if not self.store.has_history(name):
            raise self.not_found(name, "history")
        return self.store.events(name)

    def _create(self, name: str, version: VersionSpec, tags: Mapping[str, str]) -> EndpointState:
        self.store.insert_endpoint(name, _resolved(version), tags, spec_hash=version.spec_hash)
        return self._reconcile(name)

    def _deploy(
        self, name: str, version: VersionSpec, traffic: TrafficSplit, **options: Any
    ) -> EndpointState:
        self.store.add_version(name, _resolved(version), traffic, spec_hash=version.spec_hash)
        return self._reconcile(name)

    def _undeploy(self, name: str, version: str, traffic: TrafficSplit) -> EndpointState:
        self.store.remove_version(name, version, traffic)
        return self._reconcile(name)

    def _set_traffic(self, name: str, traffic: TrafficSplit) -> EndpointState:
        self.store.set_traffic(name, traffic)
        return self._reconcile(name)

    def _set_shadow(self, name: str, shadow: Shadow | None) -> EndpointState:
        self.store.set_shadow(name, shadow)
        return self._reconcile(name)

    def held_scaling(self, scaling: Scaling) -> Scaling:
        """Locally a version runs `min_replicas` worker processes; there is no autoscaler."""
        return Scaling(min_replicas=scaling.min_replicas, max_replicas=scaling.min_replicas)

    def _scale(self, name: str, version: str, scaling: Scaling) -> EndpointState:
        live = self._row(name, "scale").version(version)
        if live is None:  # checked by scale(); the row may have changed since
            raise self.not_found(name, "scale")
        self.store.scale_version(name, live.spec.with_scaling(scaling))
        return self._reconcile(name)

    def set_rate_limit(
        self, name: str, requests_per_second: float | None, burst: float | None = None
    ) -> EndpointState:
        """Limit `name` to `requests_per_second` (token bucket with `burst`); None removes it.
        Requests over the limit get 429 with Retry-After in their protocol's error shape."""
        self._row(name, "set_rate_limit")
        if requests_per_second is not None and requests_per_second <= 0:
            raise ValidationError(
                f"requests_per_second must be above 0, got {requests_per_second}",
                endpoint=name,
            )
        limit = (
            None
            if requests_per_second is None
            else {"rps": float(requests_per_second), "burst": float(burst or requests_per_second)}
        )
        self.store.set_rate_limit(name, limit)
        return self._reconcile(name)

    def _invoke(self, request: InvokeRequest) -> InvokeResult:
        url = (
            f"{self._gateway_for(request.endpoint, 'invoke')}/endpoints/{request.endpoint}/predict"
        )
        answer = self._send("invoke", request, url, stream=False)
        return self._result(request, answer.status_code, answer.headers, answer.content)

    async def _ainvoke(self, request: InvokeRequest) -> InvokeResult:
        """`invoke` over a pooled async HTTP client."""
        name = request.endpoint
        base = self._gateway.url if self._gateway is not None else None
        if base is None:  # may start the daemon: keep the event loop free meanwhile
            base = await asyncio.to_thread(self._gateway_for, name, "invoke")
        url = f"{base}/endpoints/{name}/predict"
        loop = asyncio.get_running_loop()
        if self._ahttp is None or self._ahttp_loop is not loop:
            # an AsyncClient belongs to one event loop (asyncio.run makes a new one each time)
            self._ahttp = httpx.AsyncClient(timeout=httpx.Timeout(self.request_timeout + 5))
            self._ahttp_loop = loop
        timeout = request.timeout
        try:
            answer = await self._ahttp.post(
                url,
                content=request.body,
                headers=self._invoke_headers(request),
                timeout=timeout or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException:
            raise Timeout(
                f"endpoint {name!r} did not answer within {timeout or self.request_timeout:g} s.",
                backend=self.name,
                operation="invoke",
                endpoint=name,
            ) from None
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"cannot reach the local gateway for {name!r}: {exc}",
                backend=self.name,
                operation="invoke",
                endpoint=name,
            ) from None
        return self._result(request, answer.status_code, answer.headers, answer.content)

    def _send(
        self, operation: str, request: InvokeRequest, url: str, *, stream: bool
    ) -> httpx.Response:
        """POST to the gateway; a timeout or an unreachable gateway become endpointkit errors."""
        name, version = request.endpoint, request.version
        client = self._client()
        wait = request.timeout or self.request_timeout
        outgoing = client.build_request(
            "POST",
            url,
            content=request.body,
            headers=self._invoke_headers(request),
            timeout=wait + 5,
        )
        try:
            return client.send(outgoing, stream=stream)
        except httpx.TimeoutException:
            raise Timeout(
                f"endpoint {name!r} did not answer within {wait:g} s.",
                backend=self.name,
                operation=operation,
                endpoint=name,
                version=version,
            ) from None
        except httpx.HTTPError as exc:
            self._gateway = None
            raise Unavailable(
                f"cannot reach the local gateway for {name!r}: {exc}",
                backend=self.name,
                operation=operation,
                endpoint=name,
            ) from None

    def _invoke_stream(self, request: InvokeRequest) -> StreamResult:
        """The gateway's `predict-stream` path, which relays the version's chunks unbuffered."""
        name, version = request.endpoint, request.version
        url = f"{self._gateway_for(name, 'invoke_stream')}/endpoints/{name}/predict-stream"
        answer = self._send("invoke_stream", request, url, stream=True)
        if answer.status_code >= 400:
            try:
                content = answer.read()
            finally:
                answer.close()
            self._result(request, answer.status_code, answer.headers, content)  # raises
        served = answer.headers.get("x-endpointkit-version")
        return StreamResult(
            self._chunks(answer, name, served or version, request.timeout or self.request_timeout),
            content_type=answer.headers.get("content-type", "application/octet-stream"),
            version=served,
            custom_attributes=answer.headers.get("x-amzn-sagemaker-custom-attributes"),
            headers=dict(answer.headers),
            on_close=answer.close,
        )

    def _chunks(
        self, answer: httpx.Response, name: str, version: str | None, wait: float
    ) -> Iterator[bytes]:
        context: dict[str, Any] = {
            "backend": self.name,
            "operation": "invoke_stream",
            "endpoint": name,
            "version": version,
        }
        try:
            yield from answer.iter_raw()
        except httpx.TimeoutException:
            raise Timeout(
                f"version {version!r} of {name!r} sent nothing for {wait:g} s mid-stream.",
                **context,
            ) from None
        except httpx.HTTPError as exc:  # the version broke the stream off
            raise ModelError(
                f"version {version!r} of {name!r} broke its stream off: {exc}.",
                hint="The model failed while streaming; see its log "
                f"('endpointkit local status {name}').",
                **context,
            ) from None
        finally:
            answer.close()

    # -- asynchronous inference: the durable queue (queue.py) ------------------------------------

    @property
    def queue(self) -> queue.QueueStore:
        """The queue database (requests, their states and counts)."""
        if self._queue is None:
            self._queue = queue.QueueStore(self.home)
        return self._queue

    def _invoke_async(self, request: InvokeRequest) -> AsyncInvocation:
        """One row in the queue database; the gateway (started if needed) dispatches it."""
        row = self._row(request.endpoint, "invoke_async")
        self.ensure_gateway()
        assert request.inference_id is not None  # Backend.invoke_async sets it
        output, failure = queue.locations(
            self.home, row.name, request.inference_id, queue.section_for(row.versions)
        )
        stored, duplicate = self.queue.enqueue(
            request,
            output_location=output,
            failure_location=failure,
            max_attempts=self.async_max_attempts,
            backoff_s=self.async_backoff_s,
        )
        return queue.handle_of(self, stored, duplicate=duplicate)

    def _async_outcome(self, invocation: AsyncInvocation) -> AsyncOutcome:
        row = self.queue.get(invocation.endpoint, invocation.inference_id)
        if row is None:
            raise queue.not_queued(self, invocation.endpoint, invocation.inference_id)
        return queue.outcome_of(self, self.home, row)

    def _find_invocation(self, endpoint: str, inference_id: str) -> AsyncInvocation:
        row = self.queue.get(endpoint, inference_id)
        if row is None:
            raise queue.not_queued(self, endpoint, inference_id)
        return queue.handle_of(self, row)

    async def aclose(self) -> None:
        if self._ahttp is not None:
            await self._ahttp.aclose()
            self._ahttp = None
        self.close()

    def _invoke_headers(self, request: InvokeRequest) -> dict[str, str]:
        headers = {"content-type": request.content_type}
        if request.accept:
            headers["accept"] = request.accept
        if request.version:
            headers["x-endpointkit-version"] = request.version
        if request.custom_attributes is not None:
            headers["x-amzn-sagemaker-custom-attributes"] = request.custom_attributes
        if request.inference_id:
            headers["x-amzn-sagemaker-inference-id"] = request.inference_id
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    def _result(
        self, request: InvokeRequest, status: int, headers: Mapping[str, str], body: bytes
    ) -> InvokeResult:
        name, version = request.endpoint, request.version
        served = headers.get("x-endpointkit-version")
        if status < 400:
            return InvokeResult(
                body=body,
                content_type=headers.get("content-type", "application/octet-stream"),
                version=served,
                custom_attributes=headers.get("x-amzn-sagemaker-custom-attributes"),
                headers=dict(headers),
            )
        context: dict[str, Any] = {
            "backend": self.name,
            "operation": "invoke",
            "endpoint": name,
            "version": served or version,
        }
        code = headers.get("x-endpointkit-error")
        if code is None:  # the model's own answer
            raise ModelError(
                f"version {served!r} of {name!r} answered {status}: "
                f"{body[:300].decode('utf-8', 'replace')}",
                status=status,
                body=body,
                provider_code=str(status),
                **context,
            )
        try:
            message = str(httpx.Response(status, content=body).json().get("error", code))
        except ValueError:
            message = code
        context["provider_code"] = code
        if code in ("endpoint_not_found", "version_not_found"):
            raise NotFound(message, **context)
        if code == "rate_limited":
            raise Throttled(message, **context)
        if code == "unauthorized":
            raise PermissionDenied(message, **context)
        if code == "no_traffic":
            raise NotReady(message, **context)
        if code == "timeout":
            raise Timeout(message, **context)
        raise Unavailable(message, **context)

    # -- conversions ------------------------------------------------------------------------------

    def _validate_version(self, endpoint: str, version: VersionSpec) -> None:
        """Base checks, then: a local model folder must exist, and a version from an image
        needs a working container engine (before any change is made). SageMaker-only
        async_inference settings are warned about (SettingIgnoredWarning)."""
        super()._validate_version(endpoint, version)
        warn_sagemaker_only(self.name, endpoint, version)
        model = version.model
        if version.image is not None:
            self._validate_image(endpoint, version)
        if model is None or model.startswith(("s3://", "gs://")):
            return  # remote artifacts: the serving server fetches them (or says which extra)
        path = Path(model.removeprefix("file://"))
        if not path.exists():
            raise ValidationError(
                f"model directory {str(path)!r} of version {version.name!r} does not exist.",
                hint="Give an existing local folder, a file:// URI, or an s3:// / gs:// URI.",
                backend=self.name,
                operation="deploy",
                endpoint=endpoint,
                version=version.name,
            )

    def _validate_image(self, endpoint: str, version: VersionSpec) -> None:
        from endpointkit.adapters.local import _container

        assert version.image is not None
        problem = _container.image_problem(version.image, version.model)
        hint = "Remove `image` to run the version as a local process."
        if problem is None:
            try:
                _container.find_engine()
            except _container.NoEngine as exc:
                problem, hint = str(exc), "See README.md, 'Local versions from an image'."
        if problem is not None:
            raise ValidationError(
                f"version {version.name!r}: {problem}.",
                hint=hint,
                backend=self.name,
                operation="deploy",
                endpoint=endpoint,
                version=version.name,
            )

    def _state(self, row: EndpointRow) -> EndpointState:
        versions = []
        for v in row.versions:
            status = (
                Status.CREATING
                if v.phase == STARTING
                else Status.DELETING
                if v.phase == DRAINING
                else Status.FAILED
                if v.phase == FAILED
                else Status.IN_SERVICE
            )
            versions.append(
                VersionState(
                    name=v.name,
                    spec_hash=v.spec_hash,
                    status=status,
                    spec=v.spec,
                    replicas=v.spec.resources.min_replicas,
                    scaling=self.held_scaling(v.spec.scaling or Scaling()),
                    created_at=_dt(v.created_at),
                    details={
                        "phase": v.phase,
                        "pid": v.pid,
                        "port": v.port,
                        "socket": v.socket,
                        "healthy": v.healthy,
                        "restarts": v.restarts,
                        "log": v.log_path,
                        **({"failure_reason": v.failure_reason} if v.phase == FAILED else {}),
                    },
                )
            )
        gateway = self.store.gateway()
        details: dict[str, Any] = {"tags": dict(row.tags), "home": str(self.home)}
        if row.log_hint:
            details["log_hint"] = row.log_hint
        if row.rate_limit:
            details["rate_limit"] = dict(row.rate_limit)
        # Only versions that finished deploying are reported: a version still starting or
        # draining is visible in details["pending"] until it settles.
        live = [v for v in versions if v.details["phase"] not in (STARTING, DRAINING)]
        pending = [v.name for v in versions if v.details["phase"] in (STARTING, DRAINING)]
        if pending:
            details["pending"] = pending
        # A settled endpoint with a version that could not start again serves with the
        # rest: Degraded (settled as far as waiting goes; the version says Failed).
        degraded = row.status is Status.IN_SERVICE and any(v.phase == FAILED for v in row.versions)
        status = Status.DEGRADED if degraded else row.status
        return EndpointState(
            name=row.name,
            backend=self.name,
            status=status,
            raw_status=status.value,
            versions=live,
            traffic=row.traffic,
            shadow=row.shadow,
            failure_reason=row.failure_reason,
            created_at=_dt(row.created_at),
            updated_at=_dt(row.updated_at),
            url=f"{gateway.url}/endpoints/{row.name}/invocations" if gateway.url else None,
            details=details,
        )


def _resolved(version: VersionSpec) -> VersionSpec:
    """`version` with a relative local model path made absolute against the working directory
    of the deploy: the gateway starts versions again later, from wherever it runs. (Its
    identity, `spec_hash`, stays that of the spec as given.)"""
    model = version.model
    if model is None or "://" in model or os.path.isabs(model):
        return version
    return version.model_copy(update={"model": str(Path(model).resolve())})


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)
