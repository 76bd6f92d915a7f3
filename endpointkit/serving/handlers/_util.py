"""Helpers shared by the built-in handlers."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..predictor import MissingExtraError


def require(module: str, extra: str) -> Any:
    """Import ``module`` or raise MissingExtraError naming ``pip install 'endpointkit[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"This model needs {module!r}: pip install 'endpointkit[{extra}]'"
        ) from exc


def first_file(model_dir: str, names: tuple[str, ...]) -> Path:
    """The first of ``names`` that exists in ``model_dir``; FileNotFoundError otherwise."""
    for name in names:
        path = Path(model_dir) / name
        if path.is_file():
            return path
    raise FileNotFoundError(f"None of {', '.join(names)} found in {model_dir}")


def as_array(instances: Any, dtype: Any = None) -> Any:
    """``instances`` as a 2-D numpy array (one row per instance)."""
    import numpy as np

    arr = np.asarray(instances, dtype=dtype)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    return arr
