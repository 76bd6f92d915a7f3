"""Helpers shared by the built-in handlers."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, PredictorFailed, ServingError
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
    """``instances`` as a 2-D numpy array (one row per instance); InvalidInput (422) when
    they cannot be one: several named inputs, ragged rows, objects or lists among the
    values. JSON nulls among numbers become NaN (missing values)."""
    import numpy as np

    if isinstance(instances, dict):
        names = ", ".join(repr(k) for k in instances)
        raise InvalidInput(
            f"This model takes one input, got {len(instances)}: {names}; send one input tensor "
            f"(OIP) or a list of instances",
            code="bad_instances",
        )
    try:
        arr = np.asarray(instances, dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"The instances do not form a table ({exc}); send rows of equal length holding "
            f"numbers or strings",
            code="bad_instances",
        ) from None
    if arr.dtype == object:
        try:  # numbers and nulls: nulls become NaN
            arr = np.asarray(instances, dtype=np.float64)
        except (ValueError, TypeError):
            _reject_non_scalars(arr)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    return arr


def _reject_non_scalars(arr: Any) -> None:
    """InvalidInput naming the first value that is not a number, a string or null."""
    for index, value in enumerate(arr.reshape(-1)):
        if not isinstance(value, (int, float, str, bytes)) and value is not None:
            width = arr.shape[1] if arr.ndim > 1 else 1
            row, col = divmod(index, width)
            raise InvalidInput(
                f"instance {row}: value {col} is {type(value).__name__}; each value must be a "
                f"number, a string or null",
                code="bad_instances",
            )


def user_code_error(exc: Exception) -> Exception:
    """An exception from a user's toolkit script or CPR predictor, as the platforms answer it.

    Both answer 500 for any exception from user code (toolkit ``transformer.py``: non-toolkit
    errors become ``GenericInferenceToolkitError(500)``; CPR ``handler.py`` and
    ``model_server.py``: ``HTTPException(status_code=500)``), so a ValueError is a 500 here too,
    not the 422 a native predictor's ValueError gets. Kept: our own ServingErrors (the server's
    validation), and exceptions that carry a status: the toolkit's ``BaseInferenceToolkitError``
    (``status_code``, ``message``), left to ``runtime.map_exception``, and CPR's fastapi
    ``HTTPException`` (``status_code``, ``detail``). The message stays in the log."""
    if isinstance(exc, ServingError):
        return exc
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status < 600:
        detail = getattr(exc, "detail", None)
        if detail is not None and status < 500:  # fastapi's HTTPException: detail is for clients
            err = ServingError(str(detail), status=status, code="predictor_status")
            err.__cause__ = exc
            return err
        return exc
    failed = PredictorFailed("The predictor failed")
    failed.logged = True
    failed.__cause__ = exc
    return failed
