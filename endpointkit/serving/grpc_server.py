"""OIP v2 over gRPC on its own port (``ENDPOINTKIT_GRPC_PORT``, off by default), beside HTTP.

A ``grpc.aio`` server runs on the worker's own event loop, started and stopped by the app's
lifespan, so it shares everything the HTTP routes use: the runtime (model thread, batching,
admission with a deadline, timeouts, the stuck-worker rule), the in-flight limit and gauge,
``/metrics`` (``endpointkit_grpc_requests_total{method,code}`` and a latency histogram by
method), the request log, and the drain. grpc is imported only when the port is set; without
the extra, startup fails with the ``pip install`` line.

- Service: ``inference.GRPCInferenceService`` (contracts/oip_grpc.py) and ``grpc.health.v1``
  (grpcio-health-checking's messages; our servicer): SERVING for ``""`` and the inference
  service only while the model is ready, NOT_SERVING while it loads, failed, is stuck, or
  the server drains; ``Watch`` streams changes (polled every 0.5 s) and ends on drain.
- Limits: requests over the OIP payload limit (``ENDPOINTKIT_OIP_MAX_REQUEST_BYTES``) are
  refused by gRPC itself with RESOURCE_EXHAUSTED; ModelInfer counts against
  ``max_in_flight`` and goes through ``runtime.admit`` like ``/v2/.../infer``, its deadline
  the earlier of the request timeout and the client's. Errors map from their HTTP status
  (``_CODES``); the message is the one REST clients get, with ``x-request-id`` and, when the
  server asks for a retry, ``retry-after`` in the trailing metadata.
- Workers: every worker serves gRPC on the same port, with SO_REUSEPORT when there are
  several (the kernel spreads connections; a channel stays on one worker, so a client wanting
  spread opens several channels), and without it for one worker, so a port already taken
  fails startup instead of being shared silently.
- Drain: on SIGTERM ``supervisor.GracefulServer`` calls :func:`begin_drain` as the HTTP side
  stops accepting, so both drain together within ``grace_s``: health turns NOT_SERVING,
  ``server.stop(grace)`` refuses new calls and lets those in flight finish; the lifespan
  shutdown waits for that before closing the model thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .errors import Overloaded, ServingError
from .runtime import _TICKET

if TYPE_CHECKING:
    from .app import ServingApp

EXTRA_HINT = "gRPC serving (ENDPOINTKIT_GRPC_PORT) needs its extra: pip install 'endpointkit[grpc]'"
WATCH_POLL_S = 0.5

# HTTP status of a ServingError -> gRPC status name (gRPC's own HTTP mapping, and Triton's)
_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    413: "RESOURCE_EXHAUSTED",
    415: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_SERVERS: list[GrpcServer] = []  # this process's, for begin_drain()


class GrpcStartError(Exception):
    """The gRPC server cannot start (extra missing, port taken); the message says why."""


def begin_drain() -> None:
    """Start draining every gRPC server of this process (no-op without one)."""
    for server in _SERVERS:
        server.begin_drain()


def _code_name(status: int) -> str:
    return _CODES.get(status) or ("INVALID_ARGUMENT" if status < 500 else "INTERNAL")


class GrpcServer:
    """The gRPC side of one worker: ``await start()``, then ``await stop()``."""

    def __init__(self, app: ServingApp) -> None:
        self.app = app
        self.port = 0
        self._server: Any = None
        self._health: Any = None
        self._stopping: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Bind and serve; return the port. Raises GrpcStartError."""
        try:
            import grpc
            from grpc_health.v1 import health_pb2_grpc

            from .contracts import oip_grpc
        except ImportError as exc:
            raise GrpcStartError(f"{EXTRA_HINT} ({exc})") from exc
        s = self.app.settings
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", s.oip_max_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 1 if s.workers > 1 else 0),
            ]
        )
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                self._handler(grpc, name, fn, limited),
                request_deserializer=cls.FromString,
                response_serializer=_serialize,
            )
            for name, (fn, cls, limited) in oip_grpc.METHODS.items()
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(oip_grpc.SERVICE, handlers),)
        )
        self._health = _health_servicer(self.app, oip_grpc.SERVICE)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        host = s.host if ":" not in s.host else f"[{s.host}]"
        address = f"{host}:{s.grpc_port}"
        try:
            self.port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise GrpcStartError(
                f"Cannot serve gRPC on {address}: {exc}; is ENDPOINTKIT_GRPC_PORT free?"
            ) from exc
        if not self.port:  # older grpcio returns 0 instead of raising
            raise GrpcStartError(f"Cannot serve gRPC on {address}; is ENDPOINTKIT_GRPC_PORT free?")
        await server.start()
        self._server = server
        _SERVERS.append(self)
        return self.port

    def begin_drain(self) -> None:
        """Health NOT_SERVING, refuse new calls, give those in flight ``grace_s``."""
        if self._stopping is not None or self._server is None:
            return
        self._health.drain()
        self._stopping = asyncio.get_running_loop().create_task(
            self._server.stop(self.app.settings.grace_s)
        )

    async def stop(self) -> None:
        """Drain (if not draining yet) and wait until the server has stopped."""
        self.begin_drain()
        if self._stopping is not None:
            await self._stopping
        with contextlib.suppress(ValueError):
            _SERVERS.remove(self)

    def _handler(
        self, grpc: Any, method: str, fn: Callable[..., Awaitable[Any]], limited: bool
    ) -> Callable[[Any, Any], Awaitable[Any]]:
        """``fn`` with the in-flight limit and admission (``limited``), error mapping,
        metrics and request logs."""
        app = self.app
        metrics = app.metrics
        runtime = app.runtime
        max_in_flight = app.settings.max_in_flight
        path = f"/inference.GRPCInferenceService/{method}"
        status_codes = grpc.StatusCode

        async def handle(request: Any, context: Any) -> Any:
            t0 = time.perf_counter()
            rid = getattr(request, "id", "") or app._request_id({})
            counted = False
            error: ServingError | None = None
            response: Any = None
            try:
                if limited:
                    if metrics.in_flight >= max_in_flight:
                        raise Overloaded(
                            f"The server has {metrics.in_flight} requests in flight; retry shortly",
                            headers=[(b"retry-after", b"1")],
                        )
                    runtime.admit(None)  # a cancelled call cancels this task: no flag needed
                    remaining = context.time_remaining()
                    ticket = _TICKET.get()
                    if remaining is not None and ticket is not None:
                        ticket.deadline = min(ticket.deadline, time.monotonic() + remaining)
                    metrics.in_flight += 1
                    counted = True
                response = await fn(app, request)
            except ServingError as exc:
                error = exc
            except Exception as exc:  # a bug in a contract: log it, answer INTERNAL, serve on
                app.log.event("error", "unhandled_error", exc=exc, request_id=rid, path=path)
                error = ServingError("Internal server error")
            except asyncio.CancelledError:  # the client left, or the drain's grace ran out
                metrics.observe_grpc(method, "CANCELLED", time.perf_counter() - t0)
                raise
            finally:
                if counted:
                    metrics.in_flight -= 1
            seconds = time.perf_counter() - t0
            if error is None:
                metrics.observe_grpc(method, "OK", seconds)
                self._log(request, rid, path, 200, seconds, response, None)
                return response
            code = _code_name(error.status)
            metrics.observe_grpc(method, code, seconds)
            if error.logged:
                app._log_cause(error, rid, path, "GRPC")
            self._log(request, rid, path, error.status, seconds, None, error.code)
            trailing = [("x-request-id", rid)]
            for name, value in error.headers:
                if name == b"retry-after":
                    trailing.append(("retry-after", value.decode("latin-1")))
            await context.abort(
                getattr(status_codes, code),
                error.client_message(rid),
                trailing_metadata=tuple(trailing),
            )

        return handle

    def _log(
        self,
        request: Any,
        rid: str,
        path: str,
        status: int,
        seconds: float,
        response: Any,
        code: str | None,
    ) -> None:
        log = self.app.log
        level = log.level
        if level != "off" and (
            status >= 400 or level == "all" or (level == "sampled" and log.sampled())
        ):
            size_out = response.ByteSize() if response is not None else 0
            size_in = request.ByteSize()
            log.write_request(rid, "GRPC", path, status, seconds, size_in, size_out, code)


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


def _health_servicer(app: ServingApp, service: str) -> Any:
    """A ``grpc.health.v1.Health`` servicer that reads readiness from the runtime."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    unknown = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    known = ("", service)

    class Health(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
        def __init__(self) -> None:
            self.drained = asyncio.Event()

        def status(self, name: str) -> Any:
            if name not in known:
                return None
            if self.drained.is_set() or not app.runtime.ready:
                return not_serving
            return serving

        def drain(self) -> None:
            self.drained.set()

        async def Check(self, request: Any, context: Any) -> Any:
            status = self.status(request.service)
            if status is None:
                await context.abort(
                    grpc.StatusCode.NOT_FOUND, f"Unknown service {request.service!r}"
                )
            return health_pb2.HealthCheckResponse(status=status)

        async def Watch(self, request: Any, context: Any) -> None:
            last = None
            while True:
                status = self.status(request.service)
                if status is None:
                    status = unknown
                if status != last:
                    await context.write(health_pb2.HealthCheckResponse(status=status))
                    last = status
                if self.drained.is_set():  # an open stream would hold the drain's grace
                    return
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.drained.wait(), WATCH_POLL_S)

    return Health()
