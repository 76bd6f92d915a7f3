"""The iris model as a BentoML 1.4 service, stock settings, one worker, an `async` API
(BentoML's faster option). POST /predict ``{"instances": [...]}`` -> ``{"predictions": [...]}``.
Runs in the BentoML peer's own environment; MODEL_DIR holds model.joblib."""

from __future__ import annotations

import os
from typing import Any

import bentoml
import joblib
import numpy as np


@bentoml.service(workers=1)
class Iris:
    """scikit-learn `predict` on the instances."""

    def __init__(self) -> None:
        self.model = joblib.load(os.path.join(os.environ["MODEL_DIR"], "model.joblib"))

    @bentoml.api
    async def predict(self, instances: list[list[float]]) -> dict[str, Any]:
        return {"predictions": self.model.predict(np.asarray(instances)).tolist()}
