"""The wire: running a handler the way the endpointkit server runs a predictor.

Bodies are decoded, answers encoded, Accept negotiated and streams framed by the serving
container's own modules, so the mock sends the bytes the server sends. They are imported per
request, not with this module: they need orjson (the serve extra), and this module loads with
endpointkit's pytest plugin in every user's test session.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, cast

from endpointkit.errors import ModelError
from endpointkit.invocation import JSON, InvokeRequest

Handler = Callable[..., Any]


def answer(
    handler: Handler, request: InvokeRequest, context: dict[str, Any]
) -> tuple[Prediction, str, bytes]:
    """What ran, the content type and the body the server answers a request with that reads
    the whole answer (a streamed answer is joined, as a client that reads it all gets it)."""
    kind = stream_kind(request.accept)
    if kind is None:  # the usual answer
        content_type = _response_type(handler, request.accept)
        prediction = _predict(handler, request, stream=False)
        return prediction, content_type, _encode(handler, prediction, content_type)
    stream = start_stream(handler, request, kind, context)
    return stream.prediction, kind, b"".join(stream.chunks)


def start_stream(
    handler: Handler, request: InvokeRequest, kind: str, context: dict[str, Any]
) -> Stream:
    """The chunks the server streams: `predict_stream`'s items (or the items of an iterator
    a function returns), else the whole JSON answer as one item. An error before the
    first chunk raises here."""
    if callable(getattr(handler, "predict_stream", None)):
        prediction = _predict(handler, request, stream=True)
    else:
        prediction = _predict(handler, request, stream=False)
    chunks: Iterator[bytes]
    if isinstance(prediction.outputs, Iterator):
        chunks = _framed(kind, prediction.outputs, context)
    else:
        whole = _encode(handler, prediction, JSON)
        chunks = iter([_whole_as_stream(kind, whole)])
    first = next(chunks, None)
    return Stream(
        prediction,
        first or b"",
        itertools.chain([first] if first is not None else [], chunks),
        getattr(chunks, "close", _nothing),
    )


@dataclass
class Stream:
    """A started stream: what ran, its first chunk, every chunk (the first one included) and
    how to stop the predictor early."""

    prediction: Prediction
    first: bytes
    chunks: Iterator[bytes]
    close: Callable[[], None]


def _nothing() -> None:
    pass  # a one-chunk answer has nothing to stop


def _served(error: Exception) -> ModelError:
    """What the client gets when the server answers with `error` (a predictor's exception is
    mapped to its status as the server maps it)."""
    from endpointkit.serving import codecs
    from endpointkit.serving.runtime import map_exception

    served = map_exception(error)
    message = served.message
    if served is not error:
        # The server sends a generic message and logs the exception; the body below is what
        # it sends, and the message (seen only in the test process) names the exception.
        message = f"{served.message}: {type(error).__name__}: {error}"
    body = codecs.dumps_json({"error": served.message, "code": served.code})
    return ModelError(message, status=served.status, body=body)


def _call(fn: Handler, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        raise _served(exc) from exc


@dataclass
class Prediction:
    """One request run through a handler, before its answer is encoded."""

    outputs: Any
    shape: str  # as /invocations decoded the body: "wrapped", "list" or "one"
    custom_attributes: str | None


def _predict(handler: Handler, request: InvokeRequest, *, stream: bool) -> Prediction:
    """Decode the body as the server's /invocations does and run the handler: its
    `predict_stream` when `stream` (outputs is then an iterator), else `predict`.

    A plain function gets the instances (and the parameters if it takes two arguments).
    """
    from endpointkit.serving import codecs
    from endpointkit.serving.contracts.sagemaker import check_content_type, decode_instances
    from endpointkit.serving.errors import ServingError
    from endpointkit.serving.predictor import PredictorOptions

    predictor: Any = handler  # a function, or an object with predict and optional members
    options = PredictorOptions.of(predictor)
    ctype = codecs.media_type(request.content_type) or codecs.JSON
    parameters: dict[str, Any] | None = None
    try:
        check_content_type(ctype, options)
        instances, shape, parameters = decode_instances(request.body, ctype, predictor, options)
    except ServingError as exc:
        raise _served(exc) from None
    attributes = request.custom_attributes
    if attributes is not None:
        parameters = dict(parameters or {})
        parameters["custom_attributes"] = attributes
    if options.has_preprocess:
        instances = _call(predictor.preprocess, instances)
    fn = getattr(predictor, "predict_stream" if stream else "predict", predictor)
    args = (instances, parameters) if _accepts_parameters(fn) else (instances,)
    outputs = _call(fn, *args)
    if stream:
        outputs = iter(outputs)
    elif options.has_postprocess:
        outputs = _call(predictor.postprocess, outputs)
    if attributes is not None and parameters is not None:
        attributes = str(parameters.get("custom_attributes", attributes))
    return Prediction(outputs, shape, attributes)


def _encode(handler: Handler, prediction: Prediction, accept: str) -> bytes:
    """The server's answer to a request that does not stream."""
    from endpointkit.serving import codecs

    outputs = prediction.outputs
    if isinstance(outputs, Iterator):  # a function that streams, asked for the whole answer
        outputs = list(outputs)
    try:
        if accept in (getattr(handler, "accept_types", None) or ()):
            return cast(bytes, cast(Any, handler).encode(outputs, accept))
        if prediction.shape == "one":
            outputs = outputs[0]
        elif prediction.shape == "wrapped" and accept == codecs.JSON:
            outputs = {"predictions": outputs}
        return codecs.encode(outputs, accept)
    except Exception as exc:  # ServingError, or outputs that cannot be shaped (a 500)
        raise _served(exc) from None


def _response_type(handler: Handler, accept: str | None) -> str:
    """The content type the server answers a request that does not stream with."""
    from endpointkit.serving import codecs
    from endpointkit.serving.errors import ServingError

    supported = codecs.BUILTIN_TYPES + tuple(getattr(handler, "accept_types", None) or ())
    try:
        return codecs.negotiate(accept, supported, codecs.JSON)
    except ServingError as exc:
        raise _served(exc) from None


def stream_kind(accept: str | None) -> str | None:
    """The framing the server streams for this Accept, or None (it answers whole)."""
    from endpointkit.serving import streaming

    return streaming.requested(accept.encode("latin-1")) if accept else None


def _whole_as_stream(kind: str, body: bytes) -> bytes:
    """A complete JSON answer as the server streams it (one event, or one line)."""
    from endpointkit.serving import streaming
    from endpointkit.serving.messages import Response

    return streaming.single(kind, Response(200, body)).body


def _framed(
    kind: str, items: Iterator[Any], context: dict[str, Any]
) -> Generator[bytes, None, None]:
    """Items framed by the server's `streaming.frame`; a failure mid-stream is a ModelError
    (where the server sends an error frame and breaks the connection)."""
    from endpointkit.serving import streaming

    while True:
        try:
            item = next(items)
            chunk = streaming.frame(kind, item)
        except StopIteration:
            return
        except ModelError:
            raise
        except Exception as exc:
            error = _served(exc)
            error.message = f"{error.message} (while streaming)"
            raise error.with_context(**context) from None
        yield chunk


def _accepts_parameters(handler: Handler) -> bool:
    try:
        params = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)
