"""Adapter for Vertex AI Custom Prediction Routine predictors.

A CPR predictor's ``preprocess`` receives the whole request body ``{"instances", "parameters"}``
and its ``postprocess`` returns the whole response ``{"predictions": [...]}``
(google-cloud-aiplatform ``prediction/predictor.py``); this adapter maps that onto
``predict(instances, parameters)``. Any exception from the predictor is a 500, as CPR's
``handler.py`` answers it, except a fastapi ``HTTPException``, which keeps its status.

Bodies that are not JSON (Vertex ``rawPredict`` forwards any Content-Type to the predict route)
go to :meth:`CprAdapter.handle_body`: ``preprocess`` gets the body bytes. CPR's own
``DefaultSerializer`` answers 400 for them instead.
"""

from __future__ import annotations

from typing import Any

from ._util import user_code_error


class CprAdapter:
    """Runs ``postprocess(predict(preprocess(body)))`` of a CPR-style predictor."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        for hint in (
            "max_batch_size",
            "max_latency_ms",
            "input_schema",
            "input_shape",
            "inline",
            "oip_metadata",
        ):
            if hasattr(inner, hint):
                setattr(self, hint, getattr(inner, hint))

    def load(self, model_dir: str) -> None:
        """CPR's ``load(artifacts_uri)`` gets the local model directory."""
        self.inner.load(model_dir)

    def _chain(self, body: Any) -> Any:
        pre = getattr(self.inner, "preprocess", None)
        post = getattr(self.inner, "postprocess", None)
        try:
            data = pre(body) if callable(pre) else body
            result = self.inner.predict(data)
            return post(result) if callable(post) else result
        except Exception as exc:
            raise user_code_error(exc) from exc

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        """The CPR chain on ``{"instances": instances, "parameters": parameters}``."""
        body: dict[str, Any] = {"instances": instances}
        if parameters is not None:
            body["parameters"] = parameters
        result = self._chain(body)
        if isinstance(result, dict) and "predictions" in result:
            return result["predictions"]
        return result

    def handle_body(
        self, body: bytes, content_type: str | None, accept: str | None, attributes: str | None
    ) -> tuple[bytes, str]:
        """The CPR chain on a body that is not JSON: ``preprocess(body_bytes)``.

        A bytes or str result is sent as is, typed by the first concrete Accept type, else the
        request's Content-Type; anything else is sent as JSON."""
        from .. import codecs

        result = self._chain(body)
        if isinstance(result, (bytes, str)):
            wanted = [codecs.media_type(a) for a in (accept or "").split(",")]
            rtype = next((a for a in wanted if a and "*" not in a), None)
            payload = result.encode() if isinstance(result, str) else result
            return payload, rtype or content_type or "application/octet-stream"
        return codecs.dumps_json(result), codecs.JSON
