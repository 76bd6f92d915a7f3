"""Client-side request and response types, and the codecs for them.

`Endpoint.predict` speaks the `{"instances": [...], "parameters": {...}}` envelope shared by
Vertex AI, TensorFlow Serving and the endpointkit server; `Endpoint.invoke` sends raw bytes
with any content type, and `Endpoint.invoke_stream` returns a `StreamResult` whose chunks
arrive as the model produces them. Codecs cover JSON, CSV, NumPy .npy and raw bytes; numpy is
imported only when an npy body is seen.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from endpointkit.errors import ModelError, ValidationError

__all__ = [
    "CSV",
    "EVENT_STREAM",
    "JSON",
    "JSON_LINES",
    "NPY",
    "OCTET_STREAM",
    "AsyncStreamResult",
    "InvokeRequest",
    "InvokeResult",
    "Prediction",
    "StreamResult",
    "decode",
    "dumps",
    "encode",
    "encode_instances",
]

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
OCTET_STREAM = "application/octet-stream"
EVENT_STREAM = "text/event-stream"  # server-sent events: what invoke_stream asks for by default
JSON_LINES = "application/jsonlines"


def dumps(obj: Any) -> bytes:
    """JSON-encode with orjson when installed (numpy arrays included), else the stdlib."""
    try:
        import orjson
    except ImportError:
        return json.dumps(obj, separators=(",", ":"), default=_to_jsonable).encode()
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY, default=_to_jsonable)


def _to_jsonable(obj: Any) -> Any:
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def _loads(body: bytes) -> Any:
    try:
        import orjson
    except ImportError:
        return json.loads(body)
    return orjson.loads(body)


def _base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def encode(data: Any, content_type: str) -> bytes:
    """Encode `data` for `content_type`; bytes pass through unchanged."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    kind = _base_type(content_type)
    if kind == JSON or kind.endswith("+json"):
        return dumps(data)
    if kind == CSV:
        rows = data if isinstance(data, Sequence) and not isinstance(data, str) else [data]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            writer.writerow(
                row if isinstance(row, Sequence) and not isinstance(row, str) else [row]
            )
        return buffer.getvalue().encode()
    if kind == NPY:
        import numpy as np

        out = io.BytesIO()
        np.save(out, np.asarray(data), allow_pickle=False)
        return out.getvalue()
    if isinstance(data, str):
        return data.encode()
    raise ValidationError(
        f"cannot encode {type(data).__name__} as {content_type!r}.",
        hint="Pass bytes, or use application/json, text/csv or application/x-npy.",
    )


def decode(body: bytes, content_type: str | None) -> Any:
    """Decode a response body by its content type; unknown types come back as bytes."""
    kind = _base_type(content_type or OCTET_STREAM)
    if kind == JSON or kind.endswith("+json"):
        try:
            return _loads(body)
        except ValueError as exc:
            raise ModelError(
                f"the model answered with invalid JSON: {exc}", body=body, status=200
            ) from None
    if kind == CSV:
        text = body.decode("utf-8")
        return [_csv_cell_values(row) for row in csv.reader(io.StringIO(text))]
    if kind == NPY:
        import numpy as np

        return np.load(io.BytesIO(body), allow_pickle=False)
    if kind.startswith("text/"):
        return body.decode("utf-8", "replace")
    return body


def _csv_cell_values(row: list[str]) -> list[Any]:
    values: list[Any] = []
    for cell in row:
        try:
            values.append(float(cell) if any(c in cell for c in ".eE") else int(cell))
        except ValueError:
            values.append(cell)
    return values


def encode_instances(instances: Any, parameters: Mapping[str, Any] | None = None) -> bytes:
    """The `{"instances": [...], "parameters": {...}}` JSON envelope."""
    if isinstance(instances, (str, bytes)) or not hasattr(instances, "__len__"):
        raise ValidationError(
            f"instances must be a list (one item per prediction), got {type(instances).__name__}.",
            hint="Wrap a single input in a list: predict([x]).",
        )
    envelope: dict[str, Any] = {"instances": instances}
    if parameters:
        envelope["parameters"] = dict(parameters)
    return dumps(envelope)


@dataclass(frozen=True)
class InvokeRequest:
    """One request to an endpoint, passed whole from `Endpoint` through `Backend.invoke` and
    `Backend.invoke_stream` to each backend's `_invoke` / `_invoke_stream`.

    `version` pins one version where the backend can (Capability.TARGET_VERSION);
    `inference_id` tags the request in the platform's logs and data capture (SageMaker
    InferenceId; other backends pass it on as a header); `timeout` bounds the wait for the
    answer (for a stream: for its head and then for each chunk).
    """

    endpoint: str
    body: bytes
    content_type: str = JSON
    accept: str | None = None
    version: str | None = None
    custom_attributes: str | None = None
    inference_id: str | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class InvokeResult:
    """A raw answer: the bytes, their content type, and which version served them."""

    body: bytes
    content_type: str
    version: str | None = None
    custom_attributes: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def decode(self) -> Any:
        """The body decoded by its content type (JSON, CSV, npy; other types as bytes)."""
        return decode(self.body, self.content_type)

    def json(self) -> Any:
        return _loads(self.body)


@dataclass(frozen=True)
class Prediction:
    """Predictions (one per instance) and the version that produced them."""

    predictions: list[Any]
    version: str | None
    raw: InvokeResult | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_result(cls, result: InvokeResult, n_instances: int | None = None) -> Prediction:
        """Parse a `{"predictions": [...]}` answer; a bare JSON list is accepted too."""
        payload = result.decode()
        if isinstance(payload, dict) and "predictions" in payload:
            predictions = payload["predictions"]
        elif isinstance(payload, list):
            predictions = payload
        else:
            raise ModelError(
                "the model's answer has no 'predictions' list "
                f"(got {type(payload).__name__}); use invoke() for raw answers.",
                body=result.body,
            )
        if not isinstance(predictions, list):
            predictions = list(predictions)
        if n_instances is not None and len(predictions) != n_instances:
            raise ModelError(
                f"the model returned {len(predictions)} predictions for {n_instances} instances.",
                body=result.body,
            )
        return cls(predictions=predictions, version=result.version, raw=result)


class StreamResult:
    """A streamed answer: iterate it for the body's chunks as they arrive.

    The answer's head came before the call returned, so `version` (which version answered),
    `content_type`, `custom_attributes` and `headers` are set at once, as on InvokeResult.
    Chunks are what the transport delivered: a framed format (server-sent events, JSON lines)
    may split across chunks, so reassemble frames before parsing. A failure mid-stream raises
    from the iteration. Reading to the end, `close()` or leaving a `with` block releases the
    connection.
    """

    __slots__ = (
        "_chunks",
        "_on_close",
        "_released",
        "closed",
        "content_type",
        "custom_attributes",
        "headers",
        "version",
    )

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        content_type: str,
        version: str | None = None,
        custom_attributes: str | None = None,
        headers: Mapping[str, str] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._chunks = iter(chunks)
        self._on_close = on_close
        self.content_type = content_type
        self.version = version
        self.custom_attributes = custom_attributes
        self.headers: Mapping[str, str] = dict(headers or {})
        self.closed = False
        self._released = False

    def __iter__(self) -> StreamResult:
        return self

    def __next__(self) -> bytes:
        if self.closed:
            raise StopIteration
        try:
            return next(self._chunks)
        except BaseException:  # the end, or a failure: either way the connection is done
            self.close()
            raise

    def read(self) -> bytes:
        """The rest of the body, joined."""
        return b"".join(self)

    def close(self) -> None:
        """Stop reading and release the connection (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            closer = getattr(self._chunks, "close", None)  # a generator's finally blocks run
            if callable(closer):
                closer()
        finally:
            self.release()

    def release(self) -> None:
        """Release the connection without touching the chunk iterator: safe from another
        thread while a read is blocked in it (that read then ends with an error)."""
        if self._released:
            return
        self._released = True
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> StreamResult:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<StreamResult {self.content_type} from {self.version!r}, {state}>"


_END = object()


class AsyncStreamResult:
    """`StreamResult` for async code: `async for chunk in result`; `aclose()` or `async with`."""

    __slots__ = (
        "_aclose",
        "_chunks",
        "closed",
        "content_type",
        "custom_attributes",
        "headers",
        "version",
    )

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        version: str | None = None,
        custom_attributes: str | None = None,
        headers: Mapping[str, str] | None = None,
        aclose: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._chunks = chunks
        self._aclose = aclose
        self.content_type = content_type
        self.version = version
        self.custom_attributes = custom_attributes
        self.headers: Mapping[str, str] = dict(headers or {})
        self.closed = False

    @classmethod
    def from_sync(cls, result: StreamResult) -> AsyncStreamResult:
        """Wrap a StreamResult: each chunk is read in a worker thread, off the event loop."""

        reading: asyncio.Future[object] | None = None

        async def chunks() -> AsyncIterator[bytes]:
            nonlocal reading
            while True:
                # next() with a default: StopIteration cannot cross a thread's future. The
                # read is shielded: a caller's timeout leaves it running in its thread.
                reading = asyncio.ensure_future(asyncio.to_thread(next, result, _END))
                chunk = await asyncio.shield(reading)
                if chunk is _END:
                    return
                yield chunk  # type: ignore[misc]

        def close_after_read(read: asyncio.Future[object]) -> None:
            if not read.cancelled():
                read.exception()  # retrieved: the read failed because the connection went
            result.close()

        async def aclose() -> None:
            if reading is not None and not reading.done():
                # A read is still blocked in its thread (the caller timed out or was
                # cancelled): the generator cannot be closed under it. Cut the connection so
                # the read ends, and close the rest once it has.
                result.release()
                reading.add_done_callback(close_after_read)
                return
            await asyncio.to_thread(result.close)

        return cls(
            chunks(),
            content_type=result.content_type,
            version=result.version,
            custom_attributes=result.custom_attributes,
            headers=result.headers,
            aclose=aclose,
        )

    def __aiter__(self) -> AsyncStreamResult:
        return self

    async def __anext__(self) -> bytes:
        if self.closed:
            raise StopAsyncIteration
        try:
            return await self._chunks.__anext__()
        except BaseException:
            await self.aclose()
            raise

    async def read(self) -> bytes:
        """The rest of the body, joined."""
        return b"".join([chunk async for chunk in self])

    async def aclose(self) -> None:
        """Stop reading and release the connection (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            closer = getattr(self._chunks, "aclose", None)
            if callable(closer):
                await closer()
        finally:
            if self._aclose is not None:
                await self._aclose()

    async def __aenter__(self) -> AsyncStreamResult:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<AsyncStreamResult {self.content_type} from {self.version!r}, {state}>"
