"""XGBoost boosters from ``model.ubj`` / ``model.json`` / ``model.bst`` (extra: ``xgboost``)."""

from __future__ import annotations

from typing import Any

from ._util import as_array, first_file, require

FILES = ("model.ubj", "model.bst", "model.xgb", "model.json")


class XGBoostPredictor:
    """``booster.predict(DMatrix(X))``; batches queued requests by default, as the
    scikit-learn handler does (a row's prediction does not depend on the other rows)."""

    max_batch_size = 64
    max_latency_ms = 0.0

    def __init__(self) -> None:
        self.booster: Any = None
        self.input_shape: tuple[int | None, ...] | None = None

    def load(self, model_dir: str) -> None:
        """Load the booster (no pickle involved)."""
        xgb = require("xgboost", "xgboost")
        self.booster = xgb.Booster()
        self.booster.load_model(str(first_file(model_dir, FILES)))
        n = self.booster.num_features()
        if n:
            self.input_shape = (int(n),)

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        """One prediction per row of ``instances``."""
        import numpy as np
        import xgboost as xgb

        return self.booster.predict(xgb.DMatrix(as_array(instances, np.float32)))
