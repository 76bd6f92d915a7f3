"""The trivial model as a Vertex AI CPR Predictor (runs in the CPR peer's own venv)."""

from __future__ import annotations

from typing import Any


class SumPredictor:
    """CPR interface: load / preprocess / predict / postprocess on the whole body."""

    def load(self, artifacts_uri: str) -> None:
        """Nothing to load."""

    def preprocess(self, prediction_input: Any) -> Any:
        """The instances."""
        return prediction_input["instances"]

    def predict(self, instances: Any) -> Any:
        """One float per row."""
        return [float(sum(row)) for row in instances]

    def postprocess(self, prediction_results: Any) -> Any:
        """Vertex's response shape."""
        return {"predictions": prediction_results}
