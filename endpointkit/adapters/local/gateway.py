"""The gateway's data plane: routes each request to a version process.

It speaks three front doors on one port and translates errors into each one's own shape:

- SageMaker runtime: `POST /endpoints/{name}/invocations` (Target-Variant, custom attributes,
  `x-Amzn-Invoked-Production-Variant`, model errors as 424 `ModelError`, a version's 429/503
  as `ThrottlingException`/`ServiceUnavailable` with its Retry-After);
- Vertex AI: `POST /v1/projects/{p}/locations/{l}/endpoints/{name}:predict` and `:rawPredict`
  (`deployedModelId` in the answer; `.../endpoints/{name}/deployedModels/{id}:predict` or
  `X-Vertex-AI-Deployed-Model-Id` pin a version; paths and GAPIC REST shapes in `_google.py`);
- plain: `POST /endpoints/{name}/predict` (pin with `X-Endpointkit-Version`), which is also what
  `LocalBackend.invoke` uses;
- Open Inference Protocol v2: `POST /v2/models/{name}/infer` to the version's own OIP route
  (`/versions/{v}/infer` pins), and its health and metadata reads (`_oip.py`).

Each has a streaming twin that relays the version's chunked answer as it arrives, never
buffered (streams use a connection of their own; the paths above are untouched):

- `POST /endpoints/{name}/invocations-response-stream`: AWS event-stream `PayloadPart` frames,
  for boto3's `invoke_endpoint_with_response_stream` (a broken stream ends with a
  `ModelStreamError` event, as on SageMaker);
- `POST /v1/.../endpoints/{name}:streamRawPredict` and `POST /endpoints/{name}/predict-stream`
  (`LocalBackend.invoke_stream`): the bytes as they come; a broken stream breaks the connection.

Routing is weighted random over the healthy versions that have traffic (seeded for tests),
optionally sticky by a request header; a shadow gets a sampled copy of live requests whose
answer is discarded. No framework on the hot path: `Gateway.handle` takes and returns plain
values (served by `_http/server.py` in the daemon, or as an ASGI app), JSON through orjson.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import random
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from endpointkit.adapters.local import _aws, _google, _oip
from endpointkit.adapters.local._http.client import (
    Address,
    Pool,
    StreamBody,
    UpstreamError,
    UpstreamTimeout,
)
from endpointkit.adapters.local._http.eventstream import EventStream
from endpointkit.adapters.local._http.server import serve_asgi
from endpointkit.serving.types import Headers, Receive, Scope, Send

__all__ = ["Gateway", "Route", "Router", "TokenBucket", "Upstream"]

Response = tuple[int, Headers, bytes]
StreamedResponse = tuple[int, Headers, bytes | AsyncIterator[bytes]]
ControlHandler = Callable[[str, dict[str, str], bytes], Awaitable[tuple[int, Any]]]
# Routes other modules add (queue.py: async-invocations): (method, path, query, headers, body)
# -> a response, or None when the path is not theirs.
Fallback = Callable[[str, str, bytes, Headers, bytes], Awaitable["StreamedResponse | None"]]

JSON = b"application/json"
RETRY: Headers = [(b"retry-after", b"1")]  # the gateway's own 503s: restarts take seconds
SAGEMAKER, VERTEX, VERTEX_RAW, PLAIN = "sagemaker", "vertex", "vertex-raw", "plain"
OIP = "oip"  # answered like PLAIN, at the version's /v2/models/{model}/infer
# Streaming twins, answered like their non-streaming protocol (errors, version headers).
STREAMING = {
    "sagemaker-stream": SAGEMAKER,
    "vertex-stream": VERTEX_RAW,
    "plain-stream": PLAIN,
}
# Request headers passed through to the version server (lower-case, as ASGI gives them).
FORWARD = frozenset(
    {
        b"content-type",
        b"accept",
        b"x-amzn-sagemaker-custom-attributes",
        b"x-amzn-sagemaker-inference-id",
        b"x-request-id",
        b"inference-header-content-length",  # OIP's binary tensors
    }
)
#: A version's answers that mean "too busy now", not "the model failed".
OVERLOAD = frozenset({429, 503})


class TokenBucket:
    """`rate` requests per second on average, bursts up to `burst`."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self.tokens = self.burst
        self.last = time.monotonic()

    def take(self) -> float:
        """0.0 if a request may pass now, else the seconds until one may."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate if self.rate > 0 else 60.0


class Upstream:
    """One version process as the router sees it: where it listens, its health, counters."""

    __slots__ = (
        "draining",
        "errors",
        "healthy",
        "inflight",
        "model",
        "name",
        "pool",
        "served",
        "shadowed",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.model = "model"  # the model name its OIP routes answer to (set by the daemon)
        self.pool: Pool | None = None
        self.healthy = False
        self.draining = False
        self.inflight = 0
        self.served = 0
        self.shadowed = 0
        self.errors = 0

    def set_port(self, address: Address | None) -> None:
        """Route to the version server at `address` (a Unix socket's path, or a port)."""
        if self.pool is not None:
            if address == self.pool.address:
                return
            self.pool.close()
        self.pool = Pool(address) if address is not None else None

    def stats(self) -> dict[str, Any]:
        return {
            "address": self.pool.address if self.pool else None,
            "healthy": self.healthy,
            "draining": self.draining,
            "inflight": self.inflight,
            "served": self.served,
            "shadowed": self.shadowed,
            "errors": self.errors,
        }


class Route:
    """One endpoint's routing table."""

    __slots__ = ("bucket", "name", "shadow", "traffic", "upstreams")

    def __init__(self, name: str) -> None:
        self.name = name
        self.traffic: list[tuple[str, int]] = []
        self.upstreams: dict[str, Upstream] = {}
        self.shadow: tuple[str, int] | None = None
        self.bucket: TokenBucket | None = None

    def upstream(self, version: str) -> Upstream:
        found = self.upstreams.get(version)
        if found is None:
            found = self.upstreams[version] = Upstream(version)
        return found


class NoRoute(Exception):
    """The request cannot be routed: `status`, `code` and a message for the caller."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Router:
    """Every endpoint's routing table; changed only by the daemon, read per request."""

    def __init__(self, seed: int | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.random = random.Random(seed)

    def route(self, endpoint: str) -> Route:
        found = self.routes.get(endpoint)
        if found is None:
            found = self.routes[endpoint] = Route(endpoint)
        return found

    def pick(self, route: Route, target: str | None, sticky: bytes | None) -> Upstream:
        """The version for one request: the target if given, else by weight among the healthy
        versions with traffic (the shares of unhealthy ones go to the rest in proportion)."""
        if target is not None:
            upstream = route.upstreams.get(target)
            if upstream is None or upstream.draining:
                raise NoRoute(
                    404,
                    "version_not_found",
                    f"version {target!r} is not deployed on endpoint {route.name!r} "
                    f"(deployed: {', '.join(sorted(route.upstreams)) or 'none'}).",
                )
            if not upstream.healthy or upstream.pool is None:
                raise NoRoute(
                    503,
                    "version_unhealthy",
                    f"version {target!r} of endpoint {route.name!r} is not healthy right now; "
                    "retry shortly or check 'endpointkit local status'.",
                )
            return upstream
        if len(route.traffic) == 1:  # the usual case: one version takes all the traffic
            upstream = route.upstreams.get(route.traffic[0][0])
            if upstream is not None and upstream.healthy and upstream.pool is not None:
                return upstream
        candidates: list[tuple[Upstream, int]] = []
        total = 0
        for version, weight in route.traffic:
            upstream = route.upstreams.get(version)
            if upstream is not None and upstream.healthy and upstream.pool is not None:
                candidates.append((upstream, weight))
                total += weight
        if not candidates:
            if not route.traffic:
                raise NoRoute(
                    503,
                    "no_traffic",
                    f"endpoint {route.name!r} has no traffic split: no version serves requests. "
                    f"Give a version traffic ('endpointkit traffic {route.name} v1=100').",
                )
            raise NoRoute(
                503,
                "no_healthy_version",
                f"no healthy version of endpoint {route.name!r} can serve this request "
                f"(versions with traffic: {', '.join(v for v, _ in route.traffic)}); the "
                "supervisor is restarting them. Check 'endpointkit local status' and the "
                "version logs.",
            )
        if len(candidates) == 1:
            return candidates[0][0]
        if sticky is not None:
            point = (zlib.crc32(sticky) % 10_000) / 10_000 * total
        else:
            point = self.random.random() * total
        for upstream, weight in candidates:
            point -= weight
            if point < 0:
                return upstream
        return candidates[-1][0]

    def describe(self, endpoint: str) -> tuple[list[str], dict[str, int]] | None:
        """(deployed versions, traffic split) of `endpoint`, or None if it is not routed."""
        route = self.routes.get(endpoint)
        if route is None:
            return None
        deployed = [v for v, u in route.upstreams.items() if not u.draining]
        return deployed, dict(route.traffic)

    def stats(self) -> dict[str, Any]:
        return {
            name: {
                "traffic": dict(route.traffic),
                "shadow": list(route.shadow) if route.shadow else None,
                "versions": {v: u.stats() for v, u in route.upstreams.items()},
            }
            for name, route in self.routes.items()
        }


def _header(headers: Headers, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _parse(path: str) -> tuple[str, str, str | None] | None:
    """(protocol, endpoint, version the path pins or None) for a data-plane path, or None."""
    if path.startswith("/endpoints/"):
        rest = path[len("/endpoints/") :]
        name, _, tail = rest.partition("/")
        if tail == "invocations":
            return SAGEMAKER, name, None
        if tail == "predict":
            return PLAIN, name, None
        if tail == "invocations-response-stream":
            return "sagemaker-stream", name, None
        if tail == "predict-stream":
            return "plain-stream", name, None
        return None
    if path.startswith(_google.PREFIXES):
        return _google.parse_invoke(path)
    if path.startswith("/v2/models/"):
        found = _oip.parse(path)
        if found is not None and found[2] == "infer":
            return OIP, found[0], found[1]
    return None


def _upstream_path(proto: str, upstream: Upstream) -> bytes:
    return _oip.upstream_path(upstream) if proto == OIP else b"/invocations"


class Gateway:
    """The ASGI app. `control` handles `/-/...` routes once the secret is checked."""

    def __init__(
        self,
        router: Router,
        *,
        secret: str,
        token: str | None = None,
        sticky_header: str | None = "x-endpointkit-session",
        request_timeout: float = 60.0,
        control: ControlHandler | None = None,
        status: Callable[[], dict[str, Any]] | None = None,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        self.router = router
        self.secret = secret.encode()
        self.token = token.encode() if token else None
        self.sticky = sticky_header.lower().encode() if sticky_header else None
        self.timeout = request_timeout
        self.control = control
        self.status = status
        self.ready = ready or (lambda: True)  # the daemon has started the versions in state
        self.on_upstream_failure: Callable[[str, str], None] | None = None
        self.fallback: Fallback | None = None
        # The access key boto3 signs with (SigV4) where a token is required; see _aws.py.
        self.aws_credentials: _aws.AwsCredentials | None = None
        self._shadow_tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry (for in-process use, e.g. httpx.ASGITransport); the daemon serves
        `handle` directly through its own HTTP server."""
        if scope["type"] == "http":
            await serve_asgi(self.handle, scope, receive, send)

    async def handle(
        self, method: str, path: str, query: bytes, headers: Headers, body: bytes
    ) -> StreamedResponse:
        """One request -> (status, headers, body). Header names are lower-case bytes; the
        streaming paths answer 2xx with an async iterator of chunks as the body."""
        parsed = _parse(path)
        if parsed is None:
            if self.fallback is not None:
                handled = await self.fallback(method, path, query, headers, body)
                if handled is not None:
                    return handled
            if path.startswith("/-/"):
                return await self._control(path, query, headers, body)
            if path in ("/ping", "/healthz"):
                return 200, [(b"content-type", JSON)], b'{"status":"ok"}'
            if path.startswith(_google.PREFIXES):  # Vertex control plane: reads only
                if self.token is not None and not self._authorized(headers):
                    return self._fail(VERTEX, 401, "unauthorized", "missing or wrong token.")
                return _google.resource(method, path, self.router.describe)
            if path == _oip.PREFIX or path.startswith(_oip.PREFIX + "/"):  # OIP reads
                if self.token is not None and not self._authorized(headers):
                    return self._fail(OIP, 401, "unauthorized", "missing or wrong token.")
                return await _oip.resource(method, path, self.router, self.ready, self.timeout)
            return (
                404,
                [(b"content-type", JSON)],
                orjson.dumps({"error": f"no route {method} {path}", "code": "no_route"}),
            )
        proto, name, pinned = parsed
        streaming = proto in STREAMING
        if streaming:
            proto = STREAMING[proto]
        if method != "POST":
            return self._fail(proto, 405, "method_not_allowed", f"{path} accepts POST")
        if self.token is not None:
            refused = self.refusal(proto, method, path, query, headers, body)
            if refused is not None:
                return refused
        route = self.router.routes.get(name)
        if route is None:
            if proto == SAGEMAKER:
                message = f"Endpoint {name} of account local not found."
            else:
                message = (
                    f"endpoint {name!r} not found on the local backend; run "
                    "'endpointkit list' to see endpoints."
                )
            return self._fail(proto, 404, "endpoint_not_found", message)
        bucket = route.bucket
        if bucket is not None:
            wait = bucket.take()
            if wait > 0:
                retry_after = str(max(1, int(wait + 0.999))).encode()
                return self._fail(
                    proto,
                    429,
                    "rate_limited",
                    f"endpoint {name!r} is over its rate limit ({bucket.rate:g} requests/s, "
                    f"burst {bucket.burst:g}); retry after {retry_after.decode()} s.",
                    extra=[(b"retry-after", retry_after)],
                )
        if pinned is not None:  # Vertex .../deployedModels/{id}:predict
            target: bytes | None = pinned.encode()
        elif proto == SAGEMAKER:
            target = _header(headers, b"x-amzn-sagemaker-target-variant")
        elif proto in (PLAIN, OIP):
            target = _header(headers, b"x-endpointkit-version")
        else:
            target = _header(headers, b"x-vertex-ai-deployed-model-id")
        sticky = _header(headers, self.sticky) if self.sticky else None
        forward = [(k, v) for k, v in headers if k in FORWARD]
        if proto in (PLAIN, VERTEX):
            # `curl -d '{"instances": ...}'` sends a form content type: JSON is what it means.
            ctype = _header(headers, b"content-type")
            if ctype is None or ctype.startswith(b"application/x-www-form-urlencoded"):
                forward = [(k, v) for k, v in forward if k != b"content-type"]
                forward.append((b"content-type", JSON))
        if streaming and proto == SAGEMAKER:  # boto3 sends the stream's Accept under this name
            accept = _header(headers, b"x-amzn-sagemaker-accept")
            if accept is not None:
                forward = [(k, v) for k, v in forward if k != b"accept"]
                forward.append((b"accept", accept))
        gapic = proto == VERTEX_RAW and _google.is_gapic_rest(query)
        if gapic:  # GAPIC REST sends (and expects back) the raw body inside an HttpBody
            unwrapped = _google.unwrap_http_body(body)
            gapic = unwrapped is not None
            if unwrapped is not None:
                body, ctype = unwrapped
                forward = [(k, v) for k, v in forward if k != b"content-type"]
                forward += [(b"content-type", ctype)] if ctype else []
        tried: set[str] = set()
        out_body: bytes | StreamBody
        while True:
            try:
                upstream = self.router.pick(route, target.decode() if target else None, sticky)
            except NoRoute as exc:
                return self._fail(
                    proto,
                    exc.status,
                    exc.code,
                    exc.message,
                    extra=RETRY if exc.status == 503 else None,
                )
            if upstream.name in tried:
                return self._fail(
                    proto,
                    503,
                    "no_healthy_version",
                    f"no version of endpoint {name!r} could be reached; the supervisor is "
                    "restarting it. Retry shortly.",
                    extra=RETRY,
                )
            tried.add(upstream.name)
            pool = upstream.pool
            if pool is None:  # pick() only returns versions with a pool
                continue
            upstream.inflight += 1
            try:
                upath = _upstream_path(proto, upstream)
                if streaming:
                    status, out_headers, out_body = await pool.stream(
                        b"POST", upath, forward, body, self.timeout
                    )
                else:
                    status, out_headers, out_body = await pool.request(
                        b"POST", upath, forward, body, self.timeout
                    )
            except UpstreamError as exc:
                upstream.errors += 1
                # A pool replaced meanwhile was a process a resize retired (SIGTERMed): that says
                # nothing about the new one, and the request may go to it.
                replaced = upstream.pool is not pool
                if not replaced:
                    upstream.healthy = False  # the supervisor's next check decides when it is back
                    if self.on_upstream_failure is not None:
                        self.on_upstream_failure(name, upstream.name)
                elif not exc.sent:
                    tried.discard(upstream.name)
                    continue
                if exc.sent or target is not None:
                    return self._fail(
                        proto,
                        502,
                        "version_unreachable",
                        f"version {upstream.name!r} of endpoint {name!r} failed while answering: "
                        f"{exc}",
                        version=upstream.name,
                    )
                continue  # nothing reached it: route to another version
            except UpstreamTimeout:
                upstream.errors += 1
                return self._fail(
                    proto,
                    504,
                    "timeout",
                    f"version {upstream.name!r} of endpoint {name!r} did not answer within "
                    f"{self.timeout:g} s.",
                    version=upstream.name,
                )
            finally:
                upstream.inflight -= 1
            break
        upstream.served += 1
        if route.shadow is not None:
            self._mirror(route, proto, forward, body)
        answer: StreamedResponse
        if isinstance(out_body, StreamBody):
            answer = self._answer_stream(proto, name, upstream, out_headers, out_body)
        else:
            answer = self._answer(proto, name, upstream.name, status, out_headers, out_body)
        return _google.wrap_http_body(*answer) if gapic else answer

    def refusal(
        self, proto: str, method: str, path: str, query: bytes, headers: Headers, body: bytes
    ) -> StreamedResponse | None:
        """The answer to a request this gateway must refuse (a token is required and the
        request has neither the bearer token nor a valid SigV4 signature), else None."""
        if self.token is None:
            return None
        if _aws.is_signed(headers):
            denied = self._sigv4_denied(method, path, query, headers, body)
            if denied is None:
                return None
            return self._fail(proto, denied.status, denied.code, denied.message)
        if self._authorized(headers):
            return None
        return self._fail(
            proto,
            401,
            "unauthorized",
            "missing or wrong bearer token: send 'Authorization: Bearer <token>' (the token "
            "the gateway was started with, ENDPOINTKIT_LOCAL_TOKEN).",
            extra=[(b"www-authenticate", b'Bearer realm="endpointkit"')],
        )

    def _authorized(self, headers: Headers) -> bool:
        assert self.token is not None
        value = _header(headers, b"authorization") or b""
        scheme, _, credential = value.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), self.token)

    def _sigv4_denied(
        self, method: str, path: str, query: bytes, headers: Headers, body: bytes
    ) -> _aws.Denied | None:
        if self.aws_credentials is None:
            return _aws.Denied(
                403, "UnrecognizedClientException", "this gateway has no AWS access key."
            )
        return _aws.verify_sigv4(self.aws_credentials, method, path, query, headers, body)

    def _mirror(self, route: Route, proto: str, forward: Headers, body: bytes) -> None:
        assert route.shadow is not None
        version, percent = route.shadow
        if self.router.random.random() * 100 >= percent:
            return
        upstream = route.upstreams.get(version)
        if upstream is None or not upstream.healthy or upstream.pool is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._shadow_send(upstream, _upstream_path(proto, upstream), forward, body)
        )
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow_send(
        self, upstream: Upstream, path: bytes, forward: Headers, body: bytes
    ) -> None:
        pool = upstream.pool
        if pool is None:
            return
        upstream.inflight += 1
        try:
            status, _, _ = await pool.request(b"POST", path, forward, body, self.timeout)
        except (UpstreamError, UpstreamTimeout):
            upstream.errors += 1
            return
        finally:
            upstream.inflight -= 1
        upstream.shadowed += 1
        if status >= 400:
            upstream.errors += 1

    def _answer(
        self,
        proto: str,
        endpoint: str,
        version: str,
        status: int,
        headers: Headers,
        body: bytes,
    ) -> Response:
        ctype = _header(headers, b"content-type") or JSON
        vbytes = version.encode()
        if status >= 400:
            return self._model_error(proto, endpoint, version, status, headers, ctype, body)
        if proto == SAGEMAKER:
            out = [(b"content-type", ctype), (b"x-amzn-invoked-production-variant", vbytes)]
            attrs = _header(headers, b"x-amzn-sagemaker-custom-attributes")
            if attrs is not None:
                out.append((b"x-amzn-sagemaker-custom-attributes", attrs))
            return 200, out, body
        if proto == VERTEX:
            try:
                payload = orjson.loads(body)
                predictions = payload["predictions"] if isinstance(payload, dict) else payload
            except (orjson.JSONDecodeError, KeyError, TypeError):
                return self._fail(
                    proto,
                    500,
                    "bad_model_answer",
                    f"version {version!r} answered without a 'predictions' list.",
                    version=version,
                )
            answer = {
                "predictions": predictions,
                "deployedModelId": version,
                "model": f"projects/local/locations/local/models/{endpoint}",
                "modelDisplayName": version,
                "modelVersionId": version,
            }
            return (
                200,
                [(b"content-type", JSON), (b"x-vertex-ai-deployed-model-id", vbytes)],
                orjson.dumps(answer),
            )
        out = [(b"content-type", ctype), (b"x-endpointkit-version", vbytes)]
        if proto == VERTEX_RAW:
            out.append((b"x-vertex-ai-deployed-model-id", vbytes))
            out.append((b"x-vertex-ai-endpoint-id", endpoint.encode()))
        attrs = _header(headers, b"x-amzn-sagemaker-custom-attributes")
        if attrs is not None:
            out.append((b"x-amzn-sagemaker-custom-attributes", attrs))
        if proto == OIP:
            binary = _header(headers, b"inference-header-content-length")
            if binary is not None:
                out.append((b"inference-header-content-length", binary))
        return 200, out, body

    def _answer_stream(
        self, proto: str, endpoint: str, upstream: Upstream, headers: Headers, body: StreamBody
    ) -> StreamedResponse:
        """A 2xx streamed answer, relayed as it arrives; the version counts as in flight (for
        draining) until the stream ends."""
        upstream.inflight += 1

        def done() -> None:
            upstream.inflight -= 1

        body.on_done = done
        ctype = _header(headers, b"content-type") or JSON
        vbytes = upstream.name.encode()
        attrs = _header(headers, b"x-amzn-sagemaker-custom-attributes")
        if proto == SAGEMAKER:
            out = [
                (b"content-type", b"application/vnd.amazon.eventstream"),
                (b"x-amzn-sagemaker-content-type", ctype),
                (b"x-amzn-invoked-production-variant", vbytes),
            ]
            if attrs is not None:
                out.append((b"x-amzn-sagemaker-custom-attributes", attrs))
            return 200, out, EventStream(body)
        out = [(b"content-type", ctype), (b"x-endpointkit-version", vbytes)]
        if proto == VERTEX_RAW:
            out.append((b"x-vertex-ai-deployed-model-id", vbytes))
            out.append((b"x-vertex-ai-endpoint-id", endpoint.encode()))
        if attrs is not None:
            out.append((b"x-amzn-sagemaker-custom-attributes", attrs))
        return 200, out, body

    def _overloaded(
        self,
        proto: str,
        endpoint: str,
        version: str,
        status: int,
        headers: Headers,
        ctype: bytes,
        body: bytes,
    ) -> Response:
        """A version's 429 or 503 is back-pressure, not a model error: answered as the platform
        answers overload (SageMaker's ThrottlingException / ServiceUnavailable, Google's
        RESOURCE_EXHAUSTED / UNAVAILABLE), with the version's Retry-After (1 s if it gave
        none), so clients back off instead of treating it as a failure of the model."""
        retry_after = _header(headers, b"retry-after") or b"1"
        extra = [(b"retry-after", retry_after)]
        if proto in (PLAIN, OIP):
            out = [(b"content-type", ctype), (b"x-endpointkit-version", version.encode())]
            return status, out + extra, body
        busy = "is over its capacity" if status == 503 else "is throttling requests"
        return self._fail(
            proto,
            status,
            "overloaded" if status == 503 else "throttled",
            f"version {version!r} of endpoint {endpoint!r} {busy}; retry after "
            f"{retry_after.decode('latin-1')} s.",
            version=version,
            extra=extra,
        )

    def _model_error(
        self,
        proto: str,
        endpoint: str,
        version: str,
        status: int,
        headers: Headers,
        ctype: bytes,
        body: bytes,
    ) -> Response:
        if status in OVERLOAD:
            return self._overloaded(proto, endpoint, version, status, headers, ctype, body)
        text = body[:4000].decode("utf-8", "replace")
        vbytes = version.encode()
        if proto == SAGEMAKER:
            kind = "client" if status < 500 else "server"
            payload = {
                "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
                "Message": f"Received {kind} error ({status}) from {version} with message "
                f'"{text}". See the version log (endpointkit local status {endpoint}) for more '
                "information.",
                "OriginalStatusCode": status,
                "OriginalMessage": text,
                "LogStreamArn": f"local:{endpoint}/{version}",
            }
            return (
                424,
                [
                    (b"content-type", JSON),
                    (b"x-amzn-errortype", b"ModelError"),
                    (b"x-amzn-invoked-production-variant", vbytes),
                ],
                orjson.dumps(payload),
            )
        if proto in (VERTEX, VERTEX_RAW):
            status, out, body = _google.model_error(version, status, body)
            out += [(b"x-endpointkit-version", vbytes), (b"x-vertex-ai-deployed-model-id", vbytes)]
            return status, out, body
        out = [(b"content-type", ctype), (b"x-endpointkit-version", vbytes)]
        return status, out, body

    def _fail(
        self,
        proto: str,
        status: int,
        code: str,
        message: str,
        *,
        version: str | None = None,
        extra: Headers | None = None,
    ) -> Response:
        """An error raised by the gateway itself, in the protocol's own shape."""
        if proto == SAGEMAKER:  # botocore's codes and statuses (see _aws.py)
            status, headers, body = _aws.runtime_error(status, code, message)
        elif proto in (VERTEX, VERTEX_RAW):  # Google's shape and canonical codes (_google.py)
            status, headers, body = _google.gateway_error(status, message)
        else:
            headers = [(b"content-type", JSON)]
            body = orjson.dumps({"error": message, "code": code})
        headers.append((b"x-endpointkit-error", code.encode()))
        if version is not None:
            headers.append((b"x-endpointkit-version", version.encode()))
        if extra:
            headers += extra
        return status, headers, body

    # -- control --------------------------------------------------------------------------------

    async def _control(self, path: str, query: bytes, headers: Headers, body: bytes) -> Response:
        json_type = [(b"content-type", JSON)]
        if path == "/-/health":
            info = self.status() if self.status is not None else {}
            return 200, json_type, orjson.dumps(info)
        secret = _header(headers, b"x-endpointkit-secret") or b""
        if not hmac.compare_digest(secret, self.secret):
            return 403, json_type, b'{"error":"control routes need the gateway\'s secret"}'
        if self.control is None:
            return 404, json_type, b'{"error":"no control routes"}'
        params = {}
        for pair in query.decode("latin-1").split("&"):
            if "=" in pair:
                key, _, value = pair.partition("=")
                params[key] = value
        try:
            status, payload = await self.control(path, params, body)
        except Exception as exc:
            status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
        return status, json_type, orjson.dumps(payload)

    async def drain_shadows(self) -> None:
        """Wait for shadow copies still in flight (at shutdown)."""
        if self._shadow_tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(set(self._shadow_tasks), timeout=5)
