"""Vertex AI custom-container contract: health on ``AIP_HEALTH_ROUTE``, predict on
``AIP_PREDICT_ROUTE``: ``{"instances": [...], "parameters": {...}}`` in,
``{"predictions": [...]}`` out, exactly one prediction per instance, JSON only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import codecs
from ..errors import BadRequest, UnsupportedMediaType
from ..messages import Request, Response

if TYPE_CHECKING:
    from ..app import ServingApp


async def health(app: ServingApp, req: Request) -> Response:
    """200 ``{}`` once the model is loaded; 503 with the reason before."""
    if not app.runtime.ready:
        raise app.runtime.not_ready()
    return Response(200, b"{}")


async def predict(app: ServingApp, req: Request) -> Response:
    """The Vertex predict request."""
    runtime = app.runtime
    if not runtime.ready:
        raise runtime.not_ready()
    ctype = codecs.media_type(req.header(b"content-type"))
    if ctype and ctype != codecs.JSON:
        raise UnsupportedMediaType(
            f"Content-Type {ctype!r} is not supported on the Vertex predict route; "
            f"send application/json"
        )
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
    predictions = await runtime.predict(instances, parameters)
    runtime.check_count(instances, predictions)
    return Response(200, codecs.dumps_json({"predictions": predictions}))
