"""Response streaming on the SageMaker (``/invocations``) and Vertex AI predict routes.

When: the request's Accept prefers a streaming type: ``text/event-stream`` (server-sent events,
each item one ``data:`` event: what Vertex AI streams on dedicated endpoints and what LLM
clients read) or ``application/jsonlines`` / ``application/x-ndjson`` (one item a line).
Neither platform tells the container that a request streams: SageMaker's
InvokeEndpointWithResponseStream posts to the same ``/invocations`` with the caller's Accept,
and Vertex AI's streamRawPredict to the predict route (research/sagemaker.md 1.6, vertex.md
1.4). The Accept header, which both forward, is therefore the signal.

What: the items of the predictor's ``predict_stream`` (bytes and str as they are, anything else
as JSON); a predictor without it sends the route's full JSON answer as one item. The body goes
out with chunked transfer encoding, each item written as soon as it exists; SageMaker relays
the chunks as PayloadParts.

Errors: before the first item, the usual JSON error with its status (the first item is
produced before the head is sent). After it the status is already 200, so the server sends
one error frame (an SSE ``event: error``, or an ``{"error": ...}`` line) and closes the
connection without the terminating chunk: clients see a broken stream, not a clean end, and
the server keeps serving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from . import codecs
from .errors import ServingError
from .messages import Response, StreamResponse

EVENT_STREAM = "text/event-stream"
JSON_LINES = "application/jsonlines"
NDJSON = "application/x-ndjson"
STREAM_TYPES: tuple[str, ...] = (EVENT_STREAM, JSON_LINES, NDJSON)
_CHOICES = STREAM_TYPES + codecs.BUILTIN_TYPES


def requested(accept: bytes) -> str | None:
    """The streaming type an Accept header prefers, or None (then the request does not
    stream; a header naming no streaming type costs three substring checks)."""
    if b"event-stream" not in accept and b"jsonlines" not in accept and b"ndjson" not in accept:
        return None
    try:
        chosen = codecs.negotiate(accept.decode("latin-1"), _CHOICES, "")
    except ServingError:
        return None
    return chosen if chosen in STREAM_TYPES else None


def wanted(headers: dict[bytes, bytes]) -> str | None:
    """The streaming type a request's Accept asks for, or None; no Accept and the common
    explicit `application/json` cost one lookup and one comparison."""
    asked = headers.get(b"accept")
    if asked is None or asked == b"application/json":
        return None
    return requested(asked)


def _sse(payload: bytes, event: bytes | None = None) -> bytes:
    lines = payload.replace(b"\r\n", b"\n").split(b"\n")
    head = b"event: " + event + b"\n" if event else b""
    return head + b"".join([b"data: " + line + b"\n" for line in lines]) + b"\n"


def frame(kind: str, item: Any) -> bytes:
    """One streamed item on the wire: an SSE event (str and bytes as its data, verbatim), or a
    JSON line (a str becomes a JSON string; bytes are sent verbatim, framing and all)."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        payload, raw = bytes(item), True
    elif isinstance(item, str) and kind == EVENT_STREAM:
        payload, raw = item.encode(), True
    else:
        try:
            payload, raw = codecs.dumps_json(item), False
        except TypeError:
            raise ServingError(
                f"The predictor streamed a {type(item).__name__}, which cannot be sent as JSON",
                code="encode_error",
            ) from None
    if kind == EVENT_STREAM:
        return _sse(payload)
    return payload if raw else payload + b"\n"


def error_frame(kind: str, error: ServingError, request_id: str) -> bytes:
    """The frame that reports a failure after the stream started."""
    body = codecs.dumps_json(
        {"error": error.client_message(request_id), "code": error.code, "request_id": request_id}
    )
    return _sse(body, b"error") if kind == EVENT_STREAM else body + b"\n"


async def _framed(kind: str, items: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    try:
        async for item in items:
            yield frame(kind, item)
    finally:
        closer = getattr(items, "aclose", None)
        if closer is not None:
            await closer()


async def respond(kind: str, items: AsyncIterator[Any]) -> StreamResponse:
    """A StreamResponse over ``items``; the first item is produced now, so an error before it
    raises here and becomes an ordinary error answer."""
    chunks = _framed(kind, items)
    try:
        first = await chunks.__anext__()
    except StopAsyncIteration:
        first = b""
    return StreamResponse(first, chunks, kind)


_NO_CHUNKS: tuple[bytes, ...] = ()


async def _nothing() -> AsyncIterator[bytes]:
    for chunk in _NO_CHUNKS:
        yield chunk


def single(kind: str, response: Response) -> StreamResponse:
    """A complete answer as a one-item stream (a predictor without ``predict_stream``)."""
    body = response.body
    if kind == EVENT_STREAM:
        return StreamResponse(_sse(body), _nothing(), kind, response.headers)
    first = body if body.endswith(b"\n") else body + b"\n"
    return StreamResponse(first, _nothing(), kind, response.headers)


def json_accept(headers: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """Request headers asking for JSON: the inner request of :func:`single`."""
    return {**headers, b"accept": b"application/json"}


__all__ = [
    "EVENT_STREAM",
    "JSON_LINES",
    "NDJSON",
    "STREAM_TYPES",
    "error_frame",
    "frame",
    "json_accept",
    "requested",
    "respond",
    "single",
]
