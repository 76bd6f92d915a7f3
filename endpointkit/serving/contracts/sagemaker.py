"""SageMaker hosting contract: ``GET /ping``, ``POST /invocations``, ``GET /execution-parameters``.

``/invocations`` bodies: JSON ``{"instances": [...], "parameters": {...}}`` answers
``{"predictions": [...]}``; a JSON list answers a list; any other JSON value is one instance and
answers one prediction. CSV and npy bodies are arrays of instances (rows). octet-stream bodies are
one instance (bytes). Predictors with ``handle_raw`` (toolkit scripts) get the body verbatim.
``X-Amzn-SageMaker-Custom-Attributes`` reaches the predictor as
``parameters["custom_attributes"]`` and is echoed (or replaced by what the predictor put there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import codecs
from ..errors import BadRequest, UnsupportedMediaType
from ..messages import Request, Response

if TYPE_CHECKING:
    from ..app import ServingApp

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
    """Decode by Content-Type, predict, encode by Accept."""
    runtime = app.runtime
    if not runtime.ready:
        raise runtime.not_ready()
    options = runtime.options
    ctype = codecs.media_type(req.header(b"content-type")) or codecs.JSON
    attributes = req.header(CUSTOM_ATTRIBUTES)
    extra: list[tuple[bytes, bytes]] = []
    if options.has_raw:
        accept_header = req.header(b"accept") or ""
        wanted = [codecs.media_type(a) for a in accept_header.split(",")]
        accept = next((a for a in wanted if a and a != "*/*"), app.settings.default_accept)
        body, rtype = await runtime.raw(req.body, ctype, accept, attributes)
        if attributes is not None:
            extra.append((CUSTOM_ATTRIBUTES, attributes.encode("latin-1")))
        return Response(200, body, rtype.encode("latin-1"), extra)

    if ctype not in codecs.BUILTIN_TYPES and ctype not in options.content_types:
        raise UnsupportedMediaType(
            f"Content-Type {ctype!r} is not supported; use one of "
            f"{', '.join(codecs.BUILTIN_TYPES + options.content_types)}"
        )
    accept = _accept(app, req, codecs.BUILTIN_TYPES + options.accept_types)
    predictor = runtime.predictor
    parameters: dict[str, Any] | None = None
    if ctype in options.content_types:
        instances: Any = predictor.decode(req.body, ctype)
        shape = "list"
    else:
        decoded = codecs.decode(req.body, ctype)
        if ctype == codecs.JSON:
            instances, shape, parameters = _unwrap_json(decoded)
        elif ctype == codecs.OCTET:
            instances, shape = [decoded], "one"
        else:
            instances, shape = decoded, "list"
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
