"""The iris model behind the SageMaker inference toolkit on Multi Model Server: the handler
module a SageMaker framework container provides (a `DefaultInferenceHandler` with the model,
input, predict and output functions, wrapped by the toolkit's `DefaultHandlerService`)."""

from __future__ import annotations

import json
import os
from typing import Any

import joblib
import numpy as np
from sagemaker_inference import default_inference_handler
from sagemaker_inference.default_handler_service import DefaultHandlerService
from sagemaker_inference.transformer import Transformer


class Handler(default_inference_handler.DefaultInferenceHandler):  # type: ignore[misc]
    """JSON ``{"instances": [...]}`` in, ``{"predictions": [...]}`` out."""

    def default_model_fn(self, model_dir: str, context: Any = None) -> Any:
        return joblib.load(os.path.join(model_dir, "model.joblib"))

    def default_input_fn(self, input_data: Any, content_type: str, context: Any = None) -> Any:
        return np.asarray(json.loads(input_data)["instances"])

    def default_predict_fn(self, data: Any, model: Any, context: Any = None) -> Any:
        return model.predict(data)

    def default_output_fn(self, prediction: Any, accept: str, context: Any = None) -> Any:
        return json.dumps({"predictions": prediction.tolist()})


_service = DefaultHandlerService(transformer=Transformer(default_inference_handler=Handler()))


def handle(data: Any, context: Any) -> Any:
    """MMS entry point."""
    if not getattr(_service, "initialized", False):
        _service.initialize(context)
        _service.initialized = True
    if data is None:
        return None
    return _service.handle(data, context)
