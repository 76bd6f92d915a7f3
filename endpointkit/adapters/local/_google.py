"""Vertex AI's shapes at the local gateway: paths, the GAPIC REST `HttpBody` envelope.

Invoke paths, under `/v1/` or `/v1beta1/` and `projects/{p}/locations/{l}/endpoints/{name}`:
`:predict`, `:rawPredict`, `:streamRawPredict`, and the same under
`/deployedModels/{id}`, which pins the request to that deployed model (a local version) as
dedicated endpoints do.

Read-only control plane, enough for the SDK to invoke (`aiplatform.Endpoint(name)` GETs the
endpoint first, `Endpoint.list_models()` and `aiplatform.Model(...)` read the rest):
GetEndpoint (`deployedModels` and `trafficSplit` from the gateway's routes: one deployed model
per local version, its id the version name) and GetModel (`models/{endpoint}@{version}`: model
id = endpoint name, version id = version name, as `:predict` answers name them). Any other
Vertex path answers UNIMPLEMENTED in Google's error shape: the local backend is managed with
endpointkit, not with the Vertex control plane.

Google's REST transport for `PredictionServiceClient.raw_predict` / `stream_raw_predict` does
not send the raw body: it sends the request message as JSON,
`{"httpBody": {"contentType": ..., "data": <base64>}}`, and parses the answer back into an
`HttpBody` (`json_format.Parse(..., HttpBody)`), or, when streaming, a JSON array of them
(`rest_streaming.ResponseIterator`). Plain HTTP callers (curl, the SDK's own `raw_predict`)
send and receive the raw bytes. Both reach the same version: the gateway unwraps the envelope
before forwarding and wraps the version's answer in it again. A GAPIC REST call is told apart by
the `$alt=json` query parameter its transport adds to every request.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable
from urllib.parse import unquote, unquote_to_bytes

import orjson

from endpointkit.serving.types import Headers

__all__ = [
    "PREFIXES",
    "HttpBodyStream",
    "error",
    "gateway_error",
    "is_gapic_rest",
    "model_error",
    "parse_invoke",
    "resource",
    "unwrap_http_body",
    "wrap_http_body",
]

JSON = b"application/json"
PREFIXES = ("/v1/", "/v1beta1/")
#: HTTP status -> Google's canonical status name (google.rpc.Code), as Google's REST errors carry.
CANONICAL = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
#: The gateway's own HTTP statuses -> (HTTP status, canonical code) as Google answers them.
GATEWAY = {
    405: (404, "NOT_FOUND"),
    413: (400, "FAILED_PRECONDITION"),
    415: (400, "INVALID_ARGUMENT"),
    422: (400, "FAILED_PRECONDITION"),
    502: (500, "INTERNAL"),
}
#: Endpoint name -> (deployed versions, traffic split), or None if there is no such endpoint.
Lookup = Callable[[str], "tuple[list[str], dict[str, int]] | None"]
Answer = tuple[int, Headers, bytes]
#: Invoke verbs -> the gateway's protocol names.
VERBS = {"predict": "vertex", "rawPredict": "vertex-raw", "streamRawPredict": "vertex-stream"}


def _endpoint_parts(parts: list[str]) -> bool:
    # ['', 'v1', 'projects', p, 'locations', l, 'endpoints', name...]
    return (
        len(parts) >= 8
        and parts[2] == "projects"
        and parts[4] == "locations"
        and parts[6] == "endpoints"
    )


def parse_invoke(path: str) -> tuple[str, str, str | None] | None:
    """(protocol, endpoint, pinned deployed model or None) for a Vertex invoke path, else None."""
    parts = path.split("/")
    if not _endpoint_parts(parts):
        return None
    if len(parts) == 8:
        name, _, verb = parts[7].partition(":")
        pinned = None
    elif len(parts) == 10 and parts[8] == "deployedModels":
        name = parts[7]
        pinned, _, verb = parts[9].partition(":")
        if not pinned:
            return None
    else:
        return None
    proto = VERBS.get(verb)
    if proto is None or not name:
        return None
    return proto, name, pinned


def error(status: int, message: str, canonical: str | None = None) -> Answer:
    """Google's REST error: `{"error": {"code", "message", "status"}}`, which
    `google.api_core.exceptions.from_http_response` turns into the exception for `status`."""
    name = canonical or CANONICAL.get(status, "INTERNAL" if status >= 500 else "UNKNOWN")
    body = {"error": {"code": status, "message": message, "status": name}}
    return status, [(b"content-type", JSON)], orjson.dumps(body)


def gateway_error(status: int, message: str) -> Answer:
    """The gateway's refusal (`status`) as Google's error, at the canonical code's status."""
    found = GATEWAY.get(status)
    if found is not None:
        return error(found[0], message, found[1])
    if status not in CANONICAL:
        status = 500 if status >= 500 else 400
    return error(status, message)


def model_error(version: str, status: int, body: bytes) -> Answer:
    """A version's 4xx/5xx answer to a predict call, as Vertex answers it: 400
    FAILED_PRECONDITION for a 4xx, 500 INTERNAL for a 5xx, the model's message kept."""
    text = body[:4000].decode("utf-8", "replace")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        text = payload["error"]
    message = f"version {version!r} answered {status}: {text}"
    if status < 500:
        return error(400, message, "FAILED_PRECONDITION")
    return error(500, message, "INTERNAL")


def _ok(payload: dict[str, object]) -> Answer:
    return 200, [(b"content-type", JSON)], orjson.dumps(payload)


def resource(method: str, path: str, lookup: Lookup) -> Answer:
    """A Vertex control-plane path: GetEndpoint and GetModel from the gateway's routes, 404
    for what does not exist, UNIMPLEMENTED for anything else."""
    parts = unquote(path).split("/")
    if method == "GET" and _endpoint_parts(parts) and len(parts) == 8 and ":" not in parts[7]:
        return _get_endpoint("/".join(parts[2:8]), parts[7], lookup)
    if (
        method == "GET"
        and len(parts) == 8
        and parts[2] == "projects"
        and parts[4] == "locations"
        and parts[6] == "models"
        and ":" not in parts[7]
    ):
        return _get_model("/".join(parts[2:6]), parts[7], lookup)
    return error(
        501,
        f"{method} {path} is not served by the endpointkit local gateway: it answers invoke "
        "calls and reads (GetEndpoint, GetModel); manage local endpoints with endpointkit "
        "('endpointkit deploy|traffic|delete --backend local').",
    )


def _get_endpoint(name: str, endpoint: str, lookup: Lookup) -> Answer:
    found = lookup(endpoint)
    if found is None:
        return error(404, f"Endpoint `{name}` not found on the endpointkit local backend.")
    deployed, traffic = found
    parent = name.rsplit("/endpoints/", 1)[0]
    return _ok(
        {
            "name": name,
            "displayName": endpoint,
            "deployedModels": [
                {
                    "id": version,
                    "model": f"{parent}/models/{endpoint}",
                    "modelVersionId": version,
                    "displayName": version,
                }
                for version in deployed
            ],
            "trafficSplit": {v: w for v, w in traffic.items() if w},
        }
    )


def _get_model(parent: str, model: str, lookup: Lookup) -> Answer:
    endpoint, _, version = model.partition("@")
    found = lookup(endpoint)
    name = f"{parent}/models/{endpoint}"
    if found is None or (version and version not in found[0]) or not found[0]:
        return error(404, f"Model `{name}@{version or 'default'}` not found on the local backend.")
    deployed, traffic = found
    if not version:  # the default version: the one with the most traffic
        version = max(deployed, key=lambda v: traffic.get(v, 0))
    return _ok(
        {
            "name": name,
            "displayName": endpoint,
            "versionId": version,
            "versionAliases": [version] + (["default"] if traffic.get(version) else []),
            "deployedModels": [
                {"endpoint": f"{parent}/endpoints/{endpoint}", "deployedModelId": version}
            ],
        }
    )


def is_gapic_rest(query: bytes) -> bool:
    """True if the request came from a GAPIC REST transport (`$alt=json;enum-encoding=int`)."""
    return b"$alt=json" in unquote_to_bytes(query)


def unwrap_http_body(body: bytes) -> tuple[bytes, bytes | None] | None:
    """(raw body, its content type) from a GAPIC `RawPredictRequest` JSON, or None if `body`
    is not one (then it is forwarded as it came)."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    envelope = message.get("httpBody", message.get("http_body"))
    if not isinstance(envelope, dict) or set(message) - {"httpBody", "http_body", "endpoint"}:
        return None
    data = envelope.get("data", "")
    ctype = envelope.get("contentType", envelope.get("content_type"))
    try:
        raw = base64.b64decode(data, validate=True) if data else b""
    except (binascii.Error, TypeError):
        return None
    return raw, ctype.encode() if isinstance(ctype, str) and ctype else None


def _message(ctype: bytes, chunk: bytes) -> bytes:
    return orjson.dumps(
        {"contentType": ctype.decode("latin-1"), "data": base64.b64encode(chunk).decode()}
    )


def _json_headers(headers: Headers) -> Headers:
    return [(b"content-type", JSON)] + [(k, v) for k, v in headers if k != b"content-type"]


def _content_type(headers: Headers) -> bytes:
    for key, value in headers:
        if key == b"content-type":
            return value
    return JSON


def wrap_http_body(
    status: int, headers: Headers, body: bytes | AsyncIterator[bytes]
) -> tuple[int, Headers, bytes | AsyncIterator[bytes]]:
    """A 2xx raw answer as the GAPIC REST transport parses it back: one `HttpBody` as JSON, or
    a streamed JSON array of them (one per chunk, sent as each chunk arrives). Errors are
    already in Google's JSON shape and pass unchanged."""
    if status >= 300:
        return status, headers, body
    ctype = _content_type(headers)
    if isinstance(body, bytes):
        return status, _json_headers(headers), _message(ctype, body)
    return status, _json_headers(headers), HttpBodyStream(body, ctype)


class HttpBodyStream:
    """A streamed raw answer as a JSON array of `HttpBody` messages, one per chunk.

    An object rather than an async generator so that `aclose()` always closes the version's
    stream, even when the client leaves before the first chunk (as `EventStream`)."""

    __slots__ = ("_body", "_ctype", "_state")

    def __init__(self, body: AsyncIterator[bytes], ctype: bytes) -> None:
        self._body = body
        self._ctype = ctype
        self._state = 0  # 0: nothing sent, 1: inside the array, 2: ended

    def __aiter__(self) -> HttpBodyStream:
        return self

    async def __anext__(self) -> bytes:
        if self._state == 2:
            raise StopAsyncIteration
        try:
            chunk = await self._body.__anext__()
        except StopAsyncIteration:
            end = b"]" if self._state else b"[]"
            self._state = 2
            return end
        except BaseException:
            await self.aclose()
            raise
        lead = b"," if self._state else b"["
        self._state = 1
        return lead + _message(self._ctype, chunk)

    async def aclose(self) -> None:
        self._state = 2
        close = getattr(self._body, "aclose", None)
        if close is not None:
            await close()
