"""A SageMaker-toolkit model directory (scikit-learn model.joblib + code/inference.py) and
the answers its functions give in-process, for the prebuilt-framework tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

INFERENCE = """
import os

import joblib
import numpy as np


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(input_data, model):
    # the script, not a built-in predictor: probabilities of the positive class, rounded
    return np.round(model.predict_proba(np.asarray(input_data, dtype=float))[:, 1], 3)
"""
ROWS = [[-3.0], [0.2], [3.0]]


def toolkit_model(path: Path) -> Path:
    """`path` as a model directory: a fitted LogisticRegression and code/inference.py."""
    pytest.importorskip("sklearn", reason="pip install 'endpointkit[sklearn]'")
    import joblib
    from sklearn.linear_model import LogisticRegression

    x = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    (path / "code").mkdir(parents=True)
    joblib.dump(LogisticRegression().fit(x, [0, 0, 1, 1]), path / "model.joblib")
    (path / "code" / "inference.py").write_text(INFERENCE)
    return path


def in_process(path: Path, rows: Any = ROWS) -> list[float]:
    """What the directory's own model_fn/predict_fn answer, called directly."""
    spec = importlib.util.spec_from_file_location("toolkit_inference", path / "code/inference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [float(p) for p in module.predict_fn(rows, module.model_fn(str(path)))]
