"""The request and response objects contracts work with (no framework, slots only)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from .types import Headers

JSON_TYPE = b"application/json"


class Request:
    """One HTTP request as the contracts see it; ``headers`` keys are lowercase bytes."""

    __slots__ = ("body", "headers", "method", "path", "request_id")

    def __init__(
        self, method: str, path: str, headers: dict[bytes, bytes], body: bytes, request_id: str
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.request_id = request_id

    def header(self, name: bytes) -> str | None:
        """A header value as str, or None (``name`` lowercase)."""
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")


class Response:
    """Status, body, content type and extra headers."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        content_type: bytes = JSON_TYPE,
        headers: Headers | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers


class StreamResponse(Response):
    """A 200 whose body is sent chunk by chunk (chunked transfer encoding) as ``chunks``
    yields; ``body`` is the first chunk, already produced. ``kind`` is the framing
    (``text/event-stream`` or a JSON-lines type), used to report an error mid-stream."""

    __slots__ = ("chunks", "kind")

    def __init__(
        self,
        body: bytes,
        chunks: AsyncIterator[bytes],
        kind: str,
        headers: Headers | None = None,
    ) -> None:
        super().__init__(200, body, kind.encode("latin-1"), headers)
        self.chunks = chunks
        self.kind = kind
