"""The ASGI application: a dict router in front of the three contracts, plus request ids,
payload limits, the in-flight limit, error rendering, metrics and request logs. With
``ENDPOINTKIT_GRPC_PORT`` its lifespan also runs OIP v2 over gRPC (``grpc_server.py``).

No framework on the hot path: one coroutine per request, headers looked up in a dict of bytes,
JSON through orjson.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import codecs, streaming
from .allocator import TRIM_AFTER_BYTES, HeapTrimmer
from .contracts import oip, sagemaker, vertex
from .errors import MethodNotAllowed, NotFound, Overloaded, PayloadTooLarge, ServingError
from .messages import Request, Response, StreamResponse
from .metrics import Metrics
from .reqlog import FLUSH_EVERY_S, RequestLog
from .runtime import EXIT_STUCK, ModelRuntime
from .settings import Settings
from .types import Headers, Receive, Scope, Send

if TYPE_CHECKING:
    from .grpc_server import GrpcServer

Handler = Callable[["ServingApp", Request], Awaitable[Response]]


class Route:
    """A path's handler, method, body limit, and whether it counts against the in-flight limit."""

    __slots__ = ("handler", "limited", "max_bytes", "method", "name")

    def __init__(
        self, name: str, method: str, handler: Handler, max_bytes: int, limited: bool
    ) -> None:
        self.name = name
        self.method = method
        self.handler = handler
        self.max_bytes = max_bytes
        self.limited = limited


async def _metrics(app: ServingApp, req: Request) -> Response:
    executor = app.runtime.executor
    app.metrics.predict_inline = executor is not None and executor.inline
    return Response(200, app.metrics.render(), b"text/plain; version=0.0.4; charset=utf-8")


class ServingApp:
    """The ASGI callable. ``predictor`` (already loaded) skips background loading (tests)."""

    def __init__(
        self, settings: Settings, predictor: Any = None, log: RequestLog | None = None
    ) -> None:
        self.settings = settings
        self.metrics = Metrics(settings.version)
        self.log = log or RequestLog(
            settings.request_log, settings.log_sample_rate, settings.version
        )
        self.runtime = ModelRuntime(settings, self.log, self.metrics)
        self.trimmer = HeapTrimmer()  # large bodies' memory back to the system (allocator.py)
        self._flusher: asyncio.Task[None] | None = None
        self.grpc: GrpcServer | None = None  # with ENDPOINTKIT_GRPC_PORT, once started
        self._rid_prefix = os.urandom(4).hex() + "-"
        self._rid_next = 0
        base: Headers = (
            [(b"x-endpointkit-version", settings.version.encode())] if settings.version else []
        )
        self._base_headers = base
        s = settings
        self.routes: dict[str, Route] = {
            "/ping": Route("ping", "GET", sagemaker.ping, 0, False),
            "/invocations": Route(
                "invocations", "POST", sagemaker.invocations, s.sagemaker_max_bytes, True
            ),
            "/execution-parameters": Route(
                "execution-parameters", "GET", sagemaker.execution_parameters, 0, False
            ),
            "/health": Route("vertex-health", "GET", vertex.health, 0, False),
            "/predict": Route("vertex-predict", "POST", vertex.predict, s.vertex_max_bytes, True),
            "/v2": Route("oip-metadata", "GET", oip.server_metadata, 0, False),
            "/v2/health/live": Route("oip-live", "GET", oip.live, 0, False),
            "/v2/health/ready": Route("oip-ready", "GET", oip.ready, 0, False),
            "/metrics": Route("metrics", "GET", _metrics, 0, False),
        }
        self.routes[s.health_route] = Route("vertex-health", "GET", vertex.health, 0, False)
        self.routes[s.predict_route] = Route(
            "vertex-predict", "POST", vertex.predict, s.vertex_max_bytes, True
        )
        self._oip_model = Route("oip-model", "*", oip.model_route, s.oip_max_bytes, True)
        if predictor is not None:
            self.runtime.install(predictor)

    # -- ASGI -------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                loop = asyncio.get_running_loop()
                self.runtime.on_stuck = functools.partial(
                    loop.call_soon, os.kill, os.getpid(), signal.SIGTERM
                )  # uvicorn's graceful shutdown: in-flight requests finish, then exit
                if not self.runtime.ready:
                    self.runtime.start_loading(loop)
                self._flusher = loop.create_task(self._flush_logs())
                if self.settings.grpc_port:
                    failure = await self._start_grpc()
                    if failure is not None:
                        await send({"type": "lifespan.startup.failed", "message": failure})
                        return
                self.log.event("info", "server_started", pid=os.getpid())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._flusher is not None:
                    self._flusher.cancel()
                self.trimmer.close()
                if self.grpc is not None:  # its calls still in flight need the model thread
                    await self.grpc.stop()
                runtime = self.runtime
                # a call still holding the model thread would keep the process alive at exit
                # (the interpreter joins that thread): leave without waiting for it
                held = runtime.executor is not None and not runtime.thread_idle()
                runtime.close()
                stuck = runtime.state == "stuck"
                self.log.event("info", "server_stopped", pid=os.getpid(), model_stuck=stuck)
                self.log.flush()
                await send({"type": "lifespan.shutdown.complete"})
                if stuck or held:
                    sys.stderr.flush()
                    os._exit(EXIT_STUCK if stuck else 0)
                return

    async def _start_grpc(self) -> str | None:
        """Serve OIP v2 over gRPC too (``grpc_server.py``); the reason when it cannot."""
        from .grpc_server import GrpcServer, GrpcStartError

        server = GrpcServer(self)
        try:
            port = await server.start()
        except GrpcStartError as exc:
            self.log.event("error", "grpc_start_failed", error=str(exc))
            return str(exc)
        self.grpc = server
        self.log.event("info", "grpc_started", port=port)
        return None

    async def _flush_logs(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            self.log.flush()

    def _request_id(self, headers: dict[bytes, bytes]) -> str:
        rid = headers.get(b"x-request-id") or headers.get(b"x-amzn-sagemaker-inference-id")
        if rid:
            return rid.decode("latin-1")[:128]
        self._rid_next += 1
        return f"{self._rid_prefix}{self._rid_next:x}"

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        headers = dict(scope["headers"])
        rid = self._request_id(headers)
        route = self.routes.get(path)
        if route is None and path.startswith("/v2/models/"):
            route = self._oip_model
        metrics = self.metrics
        body = b""
        code: str | None = None
        limited = False
        try:
            if route is None:
                raise NotFound(f"No route {method} {path}")
            if (
                route.method != "*"
                and method != route.method
                and not (method == "HEAD" and route.method == "GET")
            ):
                raise MethodNotAllowed(f"{path} accepts {route.method}, not {method}")
            if route.max_bytes:
                body = await self._read_body(receive, headers, route.max_bytes)
            # counted once the body is in: a slow upload holds a connection, not a model slot
            if route.limited and (route is not self._oip_model or path.endswith("/infer")):
                if metrics.in_flight >= self.settings.max_in_flight:
                    raise Overloaded(
                        f"The server has {metrics.in_flight} requests in flight; retry shortly",
                        headers=[(b"retry-after", b"1")],
                    )
                # 503 when the model's queue cannot answer in time; else a deadline, and the
                # connection, whose `disconnected` flag tells the model thread the client left
                self.runtime.admit(getattr(receive, "__self__", None))
                metrics.in_flight += 1
                limited = True
            response = await route.handler(self, Request(method, path, headers, body, rid))
        except ServingError as exc:
            code = exc.code
            response = self._error(exc, rid, path, method)
        except Exception as exc:  # a bug in a contract: log it, answer 500, keep serving
            self.log.event("error", "unhandled_error", exc=exc, request_id=rid, path=path)
            code = "internal_error"
            response = self._error(ServingError("Internal server error"), rid, path, method)
        except asyncio.CancelledError:
            # uvicorn cancels what still runs at the end of the SIGTERM grace period, then
            # answers 500 itself: answer 503 with Retry-After instead (another worker or a
            # restarted server will take the retry); a call queued for the model never runs
            code = "shutting_down"
            response = self._error(_SHUTTING_DOWN, rid, path, method)
        finally:
            if limited:
                metrics.in_flight -= 1
        if type(response) is StreamResponse:
            await self._stream(response, receive, send, rid, route, path, t0, len(body))
            return
        status = response.status
        out_headers: Headers = [
            (b"content-type", response.content_type),
            (b"content-length", b"%d" % len(response.body)),
            (b"x-request-id", rid.encode("latin-1")),
        ]
        if self._base_headers:
            out_headers += self._base_headers
        if response.headers:
            out_headers += response.headers
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send(
            {"type": "http.response.body", "body": b"" if method == "HEAD" else response.body}
        )
        if (
            len(body) >= TRIM_AFTER_BYTES
            or len(response.body) >= TRIM_AFTER_BYTES
            or code == "payload_too_large"  # read up to the limit, then refused
        ):
            self.trimmer.large_body_answered()
        seconds = time.perf_counter() - t0
        metrics.observe(route.name if route is not None else "unknown", status, seconds)
        log = self.log
        level = log.level
        if level != "off" and (
            status >= 400 or level == "all" or (level == "sampled" and log.sampled())
        ):
            log.write_request(
                rid, method, path, status, seconds, len(body), len(response.body), code
            )

    async def _stream(
        self,
        response: StreamResponse,
        receive: Receive,
        send: Send,
        rid: str,
        route: Route | None,
        path: str,
        t0: float,
        received: int,
    ) -> None:
        """Send the head and first chunk at once, then every chunk as it comes (chunked
        transfer encoding: no content-length). Stops early when the client disconnects; a
        failure sends an error frame and breaks the connection (see streaming.py)."""
        headers: Headers = [
            (b"content-type", response.content_type),
            (b"cache-control", b"no-cache"),
            (b"x-request-id", rid.encode("latin-1")),
        ]
        if self._base_headers:
            headers += self._base_headers
        if response.headers:
            headers += response.headers
        metrics = self.metrics
        metrics.in_flight += 1
        gone = asyncio.ensure_future(_disconnect(receive))
        chunks = response.chunks
        sent = len(response.body)
        failure: ServingError | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": response.body, "more_body": True})
            async for chunk in chunks:
                if gone.done():
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sent += len(chunk)
        except ServingError as exc:
            failure = exc
        except Exception as exc:  # a bug in a contract: log it, break the stream, keep serving
            self.log.event("error", "unhandled_error", exc=exc, request_id=rid, path=path)
            failure = ServingError("Internal server error")
        finally:
            gone.cancel()
            metrics.in_flight -= 1
            closer = getattr(chunks, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        status = 200
        if failure is not None:
            status = failure.status
            if failure.logged:
                self._log_cause(failure, rid, path, "POST")
            with contextlib.suppress(Exception):
                frame = streaming.error_frame(response.kind, failure, rid)
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            # Returning without the final chunk makes the server close the connection: the
            # client sees a broken stream, never a clean end.
        elif not gone.done():
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        seconds = time.perf_counter() - t0
        metrics.observe(route.name if route is not None else "unknown", status, seconds)
        log = self.log
        level = log.level
        if level != "off" and (
            failure is not None or level == "all" or (level == "sampled" and log.sampled())
        ):
            code = failure.code if failure is not None else None
            log.write_request(rid, "POST", path, status, seconds, received, sent, code)

    async def _read_body(self, receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if size > limit:
                raise PayloadTooLarge(
                    f"Request body of {size} bytes exceeds the limit of {limit} bytes"
                )
        message = await receive()
        if message["type"] != "http.request":  # gone, or timed out by the protocol
            raise ServingError("Client disconnected", status=499, code="client_closed")
        chunk: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(chunk) > limit:
                raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
            return chunk
        parts = [chunk]
        total = len(chunk)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ServingError("Client disconnected", status=499, code="client_closed")
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def _error(self, exc: ServingError, rid: str, path: str, method: str) -> Response:
        if exc.logged:
            self._log_cause(exc, rid, path, method)
        if isinstance(exc, oip._HealthNotReady):
            return Response(exc.status, b"", b"text/plain")
        body = {"error": exc.client_message(rid), "code": exc.code, "request_id": rid}
        with contextlib.suppress(Exception):
            return Response(
                exc.status, codecs.dumps_json(body), b"application/json", exc.headers or None
            )
        return Response(500, b'{"error":"Internal server error","code":"internal_error"}')

    def _log_cause(self, exc: ServingError, rid: str, path: str, method: str) -> None:
        """Log what a generic error message hides: a traceback for 5xx, one line for 4xx."""
        cause = exc.__cause__
        if cause is None:
            return
        if exc.status >= 500:
            self.log.event(
                "error", "predictor_error", exc=cause, request_id=rid, path=path, method=method
            )
        else:
            self.log.event(
                "warning",
                "predictor_rejected",
                error=f"{type(cause).__name__}: {cause}",
                request_id=rid,
                path=path,
                method=method,
            )


_SHUTTING_DOWN = ServingError(
    "The server is shutting down and stopped this request before it finished; retry",
    status=503,
    code="shutting_down",
    headers=[(b"retry-after", b"1"), (b"connection", b"close")],
)


async def _disconnect(receive: Receive) -> None:
    """Return when the client goes away (the request body has been read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def create_app(settings: Settings | None = None) -> ServingApp:
    """The app for this process's environment (uvicorn's factory in every worker)."""
    return ServingApp(settings or Settings.from_env())
