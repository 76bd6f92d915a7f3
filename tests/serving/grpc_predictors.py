"""Predictors for the gRPC tests (``--predictor grpc_predictors:Name``)."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np


class Describe:
    """Answers, per instance, what it received: ``"<type>:<dtype>:<shape>"``."""

    def load(self, model_dir: str) -> None:
        pass

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        if isinstance(instances, dict):
            kinds = ",".join(f"{k}={type(v).__name__}:{v.dtype}" for k, v in instances.items())
            n = len(next(iter(instances.values())))
            return np.array([kinds] * n, dtype=object)
        what = f"{type(instances).__name__}:{instances.dtype}:{list(instances.shape)}"
        return np.array([what] * len(instances), dtype=object)


class GatedSlow:
    """``load`` waits for ``$GATE_FILE``; ``predict`` sleeps ``parameters["sleep"]`` seconds,
    then returns its instances."""

    def load(self, model_dir: str) -> None:
        gate = os.environ["GATE_FILE"]
        deadline = time.monotonic() + 60
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.02)

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        sleep = (parameters or {}).get("sleep")
        if sleep:
            time.sleep(float(sleep))
        return instances
