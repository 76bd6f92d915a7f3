"""Open Inference Protocol v2 (KServe v2, Triton's REST API) at the gateway: the model is the
endpoint, and the protocol's model version is endpointkit's version.

- `POST /v2/models/{endpoint}/infer` goes to a version chosen by the endpoint's split (as
  `:predict` does: health, rate limit, shadow, retries on another version) and becomes that
  version's `POST /v2/models/{its model name}/infer`, the body and Triton's binary tensor
  extension (`Inference-Header-Content-Length`) passed through both ways; the answer names the
  version in `x-endpointkit-version`. `/v2/models/{endpoint}/versions/{v}/infer` pins version
  `v` (so does an `x-endpointkit-version` header).
- `GET /v2/models/{endpoint}[/versions/{v}]/ready`: 200 while a version with traffic (or `v`)
  is healthy, else 503; an unknown endpoint is 404.
- `GET /v2/models/{endpoint}[/versions/{v}]`: the chosen version's model metadata, with the
  endpoint's name and its deployed versions.
- `GET /v2/health/live`, `/v2/health/ready` (the gateway answers; it has started its
  versions) and `GET /v2` (server metadata).

Errors are OIP's `{"error": "..."}` (with endpointkit's `code`); a version's own errors pass
through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from endpointkit.serving.types import Headers

if TYPE_CHECKING:
    from endpointkit.adapters.local.gateway import Router, Upstream

__all__ = ["PREFIX", "parse", "resource"]

PREFIX = "/v2"
JSON = b"application/json"
Answer = tuple[int, Headers, bytes]


def parse(path: str) -> tuple[str, str | None, str] | None:
    """(endpoint, pinned version or None, action: "infer", "ready" or "") for a
    `/v2/models/...` path, else None."""
    if not path.startswith("/v2/models/"):
        return None
    parts = path[len("/v2/models/") :].split("/")
    name, rest = parts[0], parts[1:]
    version = None
    if len(rest) >= 2 and rest[0] == "versions":
        version, rest = rest[1] or None, rest[2:]
    if not name or len(rest) > 1 or (rest and rest[0] not in ("infer", "ready")):
        return None
    return name, version, rest[0] if rest else ""


def model_name(env: dict[str, str]) -> str:
    """The model name a version's server answers to (its `ENDPOINTKIT_MODEL_NAME`)."""
    return env.get("ENDPOINTKIT_MODEL_NAME") or "model"


def upstream_path(upstream: Upstream, action: str = "infer") -> bytes:
    """The version server's own path for `action` on its model."""
    tail = f"/{action}" if action else ""
    return f"/v2/models/{upstream.model}{tail}".encode()


def error(status: int, code: str, message: str) -> Answer:
    return status, [(b"content-type", JSON)], orjson.dumps({"error": message, "code": code})


async def resource(
    method: str,
    path: str,
    router: Router,
    ready: Callable[[], bool],
    timeout: float,
) -> Answer:
    """A `GET /v2...` route other than infer (see the module docstring)."""
    from endpointkit.adapters.local.gateway import NoRoute

    parsed = parse(path)
    known = path in ("/v2", "/v2/", "/v2/health/live", "/v2/health/ready")
    if not known and (parsed is None or parsed[2] == "infer"):
        return error(404, "no_route", f"no route {method} {path}")
    if method not in ("GET", "HEAD"):
        return error(405, "method_not_allowed", f"{path} accepts GET")
    if path in ("/v2", "/v2/"):
        from endpointkit import __version__

        meta = {
            "name": "endpointkit-local-gateway",
            "version": __version__,
            "extensions": ["binary_tensor_data"],
        }
        return 200, [(b"content-type", JSON)], orjson.dumps(meta)
    if path == "/v2/health/live":
        return 200, [(b"content-type", b"text/plain")], b""
    if path == "/v2/health/ready":
        return (200 if ready() else 503), [(b"content-type", b"text/plain")], b""
    assert parsed is not None
    name, version, action = parsed
    route = router.routes.get(name)
    if route is None:
        return error(
            404,
            "endpoint_not_found",
            f"model {name!r}: no such endpoint on the local backend; run 'endpointkit list'.",
        )
    try:
        upstream = router.pick(route, version, None)
    except NoRoute as exc:
        if action == "ready" and exc.status == 503:
            return 503, [(b"content-type", b"text/plain")], b""
        return error(exc.status, exc.code, exc.message)
    if action == "ready":
        return 200, [(b"content-type", b"text/plain")], b""
    return await _metadata(name, route.upstreams, upstream, timeout)


async def _metadata(
    endpoint: str, upstreams: dict[str, Upstream], upstream: Upstream, timeout: float
) -> Answer:
    from endpointkit.adapters.local._http.client import UpstreamError, UpstreamTimeout

    pool = upstream.pool
    if pool is None:
        return error(503, "version_unhealthy", f"version {upstream.name!r} is not serving.")
    try:
        status, _, body = await pool.request(b"GET", upstream_path(upstream, ""), [], b"", timeout)
    except (UpstreamError, UpstreamTimeout) as exc:
        return error(502, "version_unreachable", f"version {upstream.name!r} did not answer: {exc}")
    out: Headers = [(b"content-type", JSON), (b"x-endpointkit-version", upstream.name.encode())]
    if status >= 400:
        return status, out, body
    meta = orjson.loads(body)
    if isinstance(meta, dict):
        meta["name"] = endpoint
        meta["versions"] = [v for v, u in upstreams.items() if not u.draining]
    return 200, out, orjson.dumps(meta)
