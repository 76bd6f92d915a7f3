"""SageMaker hosting contract: ``GET /ping``, ``POST /invocations``, ``GET /execution-parameters``.

``/invocations`` bodies: JSON ``{"instances": [...], "parameters": {...}}`` answers
``{"predictions": [...]}``; a JSON list answers a list; any other JSON value is one instance and
answers one prediction. CSV and npy bodies are arrays of instances (rows). octet-stream bodies are
one instance (bytes). Predictors with ``handle_raw`` (toolkit scripts) get the body verbatim, with
the raw Content-Type and Accept headers.
``X-Amzn-SageMaker-Custom-Attributes`` reaches the predictor as
``parameters["custom_attributes"]`` and is echoed (or replaced by what the predictor put there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import codecs, streaming
from ..errors import BadRequest, UnsupportedMediaType
from ..messages import Request, Response

if TYPE_CHECKING:
    from ..app import ServingApp
    from ..predictor import PredictorOptions

CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"


async def ping(app: ServingApp, req: Request) -> Response:
    """200 with an empty body once the model is loaded; 503 with the reason before."""
    if not app.runtime.ready:
        raise app.runtime.not_ready()
    return Response(200, b"", b"text/plain")


async def execution_parameters(app: ServingApp, req: Request) -> Response:
    """Batch-transform hints (SageMaker calls this before the first /invocations)."""
    s = app.settings
    body = {
        "MaxConcurrentTransforms": s.max_concurrent_transforms,
        "BatchStrategy": s.batch_strategy,
        "MaxPayloadInMB": s.max_payload_mb,
    }
    return Response(200, codecs.dumps_json(body))


def _accept(app: ServingApp, req: Request, supported: tuple[str, ...]) -> str:
    return codecs.negotiate(req.header(b"accept"), supported, app.settings.default_accept)


async def invocations(app: ServingApp, req: Request) -> Response:
    """Decode by Content-Type, predict, encode by Accept (a streaming Accept streams)."""
    runtime = app.runtime
    if not runtime.ready:
        raise runtime.not_ready()
    if (kind := streaming.wanted(req.headers)) is not None:
        return await _stream(app, req, kind)
    options = runtime.options
    ctype = codecs.media_type(req.header(b"content-type")) or codecs.JSON
    attributes = req.header(CUSTOM_ATTRIBUTES)
    extra: list[tuple[bytes, bytes]] = []
    if options.has_raw:
        # the raw headers, as the toolkit's transformer.py passes them: only a missing or
        # exactly "*/*" Accept becomes SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT
        accept = req.header(b"accept")
        if not accept or accept == "*/*":
            accept = app.settings.default_accept
        body, rtype = await runtime.raw(req.body, req.header(b"content-type"), accept, attributes)
        if attributes is not None:
            extra.append((CUSTOM_ATTRIBUTES, attributes.encode("latin-1")))
        return Response(200, body, rtype.encode("latin-1"), extra)

    check_content_type(ctype, options)
    accept = _accept(app, req, codecs.BUILTIN_TYPES + options.accept_types)
    predictor = runtime.predictor
    instances, shape, parameters = decode_instances(req.body, ctype, predictor, options)
    if options.array_input and ctype == codecs.JSON and runtime.validator is None:
        instances = codecs.numeric_array(instances)
    if attributes is not None:
        parameters = dict(parameters or {})
        parameters["custom_attributes"] = attributes
    predictions = await runtime.predict(instances, parameters)
    if shape != "one":
        runtime.check_count(instances, predictions)
    if attributes is not None and parameters is not None:
        out_attrs = str(parameters.get("custom_attributes", attributes))
        extra.append((CUSTOM_ATTRIBUTES, out_attrs.encode("latin-1", "replace")))
    if accept in options.accept_types:
        return Response(200, predictor.encode(predictions, accept), accept.encode(), extra)
    if shape == "one":
        predictions = predictions[0]
    elif shape == "wrapped" and accept == codecs.JSON:
        predictions = {"predictions": predictions}
    return Response(200, codecs.encode(predictions, accept), accept.encode(), extra)


async def _stream(app: ServingApp, req: Request, kind: str) -> Response:
    """Stream ``predict_stream``'s items; other predictors stream their one JSON answer."""
    runtime = app.runtime
    options = runtime.options
    if not options.has_stream or options.has_raw:
        inner = Request(
            req.method, req.path, streaming.json_accept(req.headers), req.body, req.request_id
        )
        return streaming.single(kind, await invocations(app, inner))
    ctype = codecs.media_type(req.header(b"content-type")) or codecs.JSON
    parameters: dict[str, Any] | None = None
    if ctype in options.content_types:
        instances: Any = runtime.predictor.decode(req.body, ctype)
    elif ctype in codecs.BUILTIN_TYPES:
        decoded = codecs.decode(req.body, ctype)
        if ctype == codecs.JSON:
            instances, _, parameters = _unwrap_json(decoded)
        else:
            instances = [decoded] if ctype == codecs.OCTET else decoded
    else:
        raise UnsupportedMediaType(
            f"Content-Type {ctype!r} is not supported; use one of "
            f"{', '.join(codecs.BUILTIN_TYPES + options.content_types)}"
        )
    attributes = req.header(CUSTOM_ATTRIBUTES)
    if attributes is not None:
        parameters = dict(parameters or {})
        parameters["custom_attributes"] = attributes
    response = await streaming.respond(kind, runtime.stream(instances, parameters))
    if attributes is not None and parameters is not None:  # set by the first item at the latest
        out_attrs = str(parameters.get("custom_attributes", attributes))
        response.headers = [(CUSTOM_ATTRIBUTES, out_attrs.encode("latin-1", "replace"))]
    return response


def check_content_type(ctype: str, options: PredictorOptions) -> None:
    """415 unless the server or the predictor decodes `ctype`."""
    if ctype not in codecs.BUILTIN_TYPES and ctype not in options.content_types:
        raise UnsupportedMediaType(
            f"Content-Type {ctype!r} is not supported; use one of "
            f"{', '.join(codecs.BUILTIN_TYPES + options.content_types)}"
        )


def decode_instances(
    body: bytes, ctype: str, predictor: Any, options: PredictorOptions
) -> tuple[Any, str, dict[str, Any] | None]:
    """A /invocations body -> (instances, shape, parameters): the predictor's own decoder for
    its content types, else the built-in codecs; shape is "wrapped", "list" or "one" (how the
    answer is encoded back). The mock backend decodes with this too."""
    if ctype in options.content_types:
        return predictor.decode(body, ctype), "list", None
    decoded = codecs.decode(body, ctype)
    if ctype == codecs.JSON:
        return _unwrap_json(decoded)
    if ctype == codecs.OCTET:
        return [decoded], "one", None
    return decoded, "list", None


def _unwrap_json(decoded: Any) -> tuple[Any, str, dict[str, Any] | None]:
    """``{"instances", "parameters"}`` -> wrapped; list -> list; anything else -> one."""
    if isinstance(decoded, dict) and "instances" in decoded:
        instances = decoded["instances"]
        parameters = decoded.get("parameters")
        if not isinstance(instances, list):
            raise BadRequest("'instances' must be a JSON list", code="bad_instances")
        if parameters is not None and not isinstance(parameters, dict):
            raise BadRequest("'parameters' must be a JSON object", code="bad_parameters")
        return instances, "wrapped", parameters
    if isinstance(decoded, list):
        return decoded, "list", None
    return [decoded], "one", None
