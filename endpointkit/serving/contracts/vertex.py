"""Vertex AI custom-container contract: health on ``AIP_HEALTH_ROUTE``, predict on
``AIP_PREDICT_ROUTE``: ``{"instances": [...], "parameters": {...}}`` in,
``{"predictions": [...]}`` out, exactly one prediction per instance.

Vertex ``rawPredict`` forwards any payload and Content-Type to the predict route
(https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints/rawPredict),
so a body that is not JSON is handed to the predictor: a CPR predictor's ``preprocess`` gets its
bytes, anything else is served as on ``/invocations`` (toolkit ``input_fn``/``output_fn``,
predictor codecs, CSV and npy). A toolkit script with its own ``input_fn``, ``output_fn`` or
``transform_fn`` gets every body verbatim, JSON too, and its output is the response."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import codecs, streaming
from ..errors import BadRequest, UnsupportedMediaType
from ..messages import Request, Response
from . import sagemaker

if TYPE_CHECKING:
    from ..app import ServingApp


async def health(app: ServingApp, req: Request) -> Response:
    """200 ``{}`` once the model is loaded; 503 with the reason before."""
    if not app.runtime.ready:
        raise app.runtime.not_ready()
    return Response(200, b"{}")


async def predict(app: ServingApp, req: Request) -> Response:
    """The Vertex predict request (a streaming Accept streams: streamRawPredict)."""
    runtime = app.runtime
    if not runtime.ready:
        raise runtime.not_ready()
    if (kind := streaming.wanted(req.headers)) is not None:
        return await _stream(app, req, kind)
    ctype = codecs.media_type(req.header(b"content-type"))
    predictor = runtime.predictor
    if ctype and ctype != codecs.JSON:
        # rawPredict forwards any payload and Content-Type to this route: the predictor
        # decodes it (CPR preprocess; toolkit input_fn or the /invocations codecs)
        if callable(getattr(predictor, "handle_body", None)):
            out, rtype = await runtime.raw(
                req.body,
                req.header(b"content-type"),
                req.header(b"accept") or "",
                None,
                hook="handle_body",
            )
            return Response(200, out, rtype.encode("latin-1"))
        return await sagemaker.invocations(app, req)
    if getattr(predictor, "vertex_raw", False):  # a toolkit script that reads the body itself
        return await sagemaker.invocations(app, req)
    codecs.negotiate(req.header(b"accept"), (codecs.JSON,), codecs.JSON)
    body = codecs.loads_json(req.body)
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
        raise BadRequest(
            'The body must be a JSON object with an "instances" list', code="bad_instances"
        )
    instances: list[Any] = body["instances"]
    parameters = body.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise BadRequest('"parameters" must be a JSON object', code="bad_parameters")
    if runtime.options.array_input and runtime.validator is None:
        predictions = await runtime.predict(codecs.numeric_array(instances), parameters)
    else:
        predictions = await runtime.predict(instances, parameters)
    runtime.check_count(instances, predictions)
    return Response(200, codecs.dumps_json({"predictions": predictions}))


async def _stream(app: ServingApp, req: Request, kind: str) -> Response:
    """Stream ``predict_stream``'s items; other predictors stream their one JSON answer."""
    runtime = app.runtime
    if not runtime.options.has_stream:
        inner = Request(
            req.method, req.path, streaming.json_accept(req.headers), req.body, req.request_id
        )
        return streaming.single(kind, await predict(app, inner))
    ctype = codecs.media_type(req.header(b"content-type"))
    if ctype and ctype != codecs.JSON:
        raise UnsupportedMediaType(
            f"Content-Type {ctype!r} is not supported on the Vertex predict route; "
            f"send application/json"
        )
    body = codecs.loads_json(req.body)
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
        raise BadRequest(
            'The body must be a JSON object with an "instances" list', code="bad_instances"
        )
    parameters = body.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise BadRequest('"parameters" must be a JSON object', code="bad_parameters")
    return await streaming.respond(kind, runtime.stream(body["instances"], parameters))
