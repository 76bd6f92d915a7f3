"""Adapter for Vertex AI Custom Prediction Routine predictors.

A CPR predictor's ``preprocess`` receives the whole request body ``{"instances", "parameters"}``
and its ``postprocess`` returns the whole response ``{"predictions": [...]}``
(google-cloud-aiplatform ``prediction/predictor.py``); this adapter maps that onto
``predict(instances, parameters)``.
"""

from __future__ import annotations

from typing import Any


class CprAdapter:
    """Runs ``postprocess(predict(preprocess(body)))`` of a CPR-style predictor."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        for hint in ("max_batch_size", "max_latency_ms", "input_schema", "input_shape", "inline"):
            if hasattr(inner, hint):
                setattr(self, hint, getattr(inner, hint))

    def load(self, model_dir: str) -> None:
        """CPR's ``load(artifacts_uri)`` gets the local model directory."""
        self.inner.load(model_dir)

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        """The CPR chain on ``{"instances": instances, "parameters": parameters}``."""
        body: dict[str, Any] = {"instances": instances}
        if parameters is not None:
            body["parameters"] = parameters
        pre = getattr(self.inner, "preprocess", None)
        post = getattr(self.inner, "postprocess", None)
        data = pre(body) if callable(pre) else body
        result = self.inner.predict(data)
        if callable(post):
            result = post(result)
        if isinstance(result, dict) and "predictions" in result:
            return result["predictions"]
        return result
