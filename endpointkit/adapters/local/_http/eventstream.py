"""SageMaker's response stream for the gateway: a version's chunks as AWS event-stream frames.

One `PayloadPart` event per chunk, as `invoke_endpoint_with_response_stream` reads them; a broken
stream ends with a `ModelStreamError` event, as on SageMaker. The framing (prelude, header block,
two CRC32s) follows the AWS event-stream encoding that botocore's `EventStreamBuffer` parses.
"""

from __future__ import annotations

import struct
import zlib

import orjson

from endpointkit.adapters.local._http.client import StreamBody, UpstreamError, UpstreamTimeout

__all__ = ["EventStream"]


def _event(headers: bytes, payload: bytes) -> bytes:
    """One AWS event-stream message (`headers` already encoded)."""
    prelude = struct.pack("!II", 16 + len(headers) + len(payload), len(headers))
    message = prelude + struct.pack("!I", zlib.crc32(prelude)) + headers + payload
    return message + struct.pack("!I", zlib.crc32(message))


def _event_headers(**headers: str) -> bytes:
    out = b""
    for key, value in headers.items():
        name, data = key.replace("_", "-").encode(), value.encode()
        out += struct.pack("!B", len(name) + 1) + b":" + name + struct.pack("!BH", 7, len(data))
        out += data
    return out


_PAYLOAD_PART = _event_headers(
    message_type="event", event_type="PayloadPart", content_type="application/octet-stream"
)
_STREAM_ERROR = _event_headers(
    message_type="exception", exception_type="ModelStreamError", content_type="application/json"
)


class EventStream:
    """A version's streamed answer as SageMaker's response stream: one PayloadPart per chunk;
    a broken stream ends with a ModelStreamError event, as on SageMaker.

    An object rather than an async generator: a generator's `finally` does not run when it is
    closed before its first step (a client gone before the first chunk), and the version's
    stream would stay open; `aclose()` here always closes it."""

    __slots__ = ("_body", "_ended")

    def __init__(self, body: StreamBody) -> None:
        self._body = body
        self._ended = False

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> bytes:
        if self._ended:
            raise StopAsyncIteration
        try:
            chunk = await self._body.__anext__()
        except (UpstreamError, UpstreamTimeout) as exc:
            await self.aclose()
            message = {"Message": f"Model stream broken: {exc}", "ErrorCode": "StreamBroken"}
            return _event(_STREAM_ERROR, orjson.dumps(message))
        except BaseException:  # the end, or cancelled: either way the stream is done
            await self.aclose()
            raise
        return _event(_PAYLOAD_PART, chunk)

    async def aclose(self) -> None:
        self._ended = True
        await self._body.aclose()
