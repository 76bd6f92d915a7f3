"""scikit-learn models from ``model.joblib`` / ``model.pkl`` (extra: ``sklearn``).

Loading a pickle runs code from the file: serve only artifacts you trust.
"""

from __future__ import annotations

from typing import Any

from ._util import as_array, first_file, require

FILES = ("model.joblib", "model.pkl", "model.pickle")
METHODS = frozenset({"predict", "predict_proba", "predict_log_proba", "decision_function"})


class SklearnPredictor:
    """``model.predict(X)``; ``parameters={"method": "predict_proba"}`` picks another method.

    Batches by default: an estimator's answer for a row does not depend on the other rows,
    and a call costs about the same for 2 rows as for 128 (the quickstart's logistic
    regression: 106 vs 105 us, its input checks dominate). While the model thread is busy,
    queued requests (up to 64 rows, same parameters) become one call; an idle server adds no
    delay. ``ENDPOINTKIT_MAX_BATCH_SIZE=1`` turns it off."""

    max_batch_size = 64
    max_latency_ms = 0.0

    def __init__(self) -> None:
        self.model: Any = None
        self.input_shape: tuple[int | None, ...] | None = None

    def load(self, model_dir: str) -> None:
        """Unpickle the estimator with joblib."""
        require("sklearn", "sklearn")
        joblib = require("joblib", "sklearn")
        self.model = joblib.load(first_file(model_dir, FILES))
        n = getattr(self.model, "n_features_in_", None)
        if isinstance(n, int):
            self.input_shape = (n,)

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        """One prediction per row of ``instances``."""
        method = (parameters or {}).get("method", "predict")
        if method not in METHODS or not hasattr(self.model, method):
            raise ValueError(f"parameters.method must be one of {sorted(METHODS)}, got {method!r}")
        result = getattr(self.model, method)(as_array(instances))
        if isinstance(result, list):  # multi-output probabilities: one array per output
            # one prediction per row (each a list of its outputs' probabilities), so a batch
            # splits by row like any other answer
            return [[output[i].tolist() for output in result] for i in range(len(result[0]))]
        return result
