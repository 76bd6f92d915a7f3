"""The endpointkit serving runtime: one ASGI server for the SageMaker, Vertex AI and Open
Inference Protocol v2 contracts. ``predictor`` needs only the standard library and pydantic;
the server itself needs ``pip install 'endpointkit[serve]'``."""

from __future__ import annotations

from .. import __version__
from .predictor import MissingExtraError, Predictor, PredictorLoadError, load_predictor

__all__ = ["MissingExtraError", "Predictor", "PredictorLoadError", "__version__", "load_predictor"]
