"""Prebuilt framework containers (`VersionSpec.framework`): the names and the spec's rules.

SDK-free, like the rest of the vocabulary; each platform resolves the image itself
(`adapters/sagemaker/_prebuilt.py`, `adapters/vertex/_prebuilt.py`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from endpointkit.spec import VersionSpec

__all__ = ["FRAMEWORK_VERSION", "PY_VERSION", "Framework", "framework_problem"]

# Frameworks with a prebuilt serving container on SageMaker and on Vertex AI.
Framework = Literal["sklearn", "xgboost", "pytorch"]
# SageMaker's tags ("1.2-1", "2.1") and Vertex AI's ("1.3"); each platform checks its own list.
FRAMEWORK_VERSION = re.compile(r"^[0-9][0-9A-Za-z.-]{0,31}$")
PY_VERSION = re.compile(r"^py[0-9]{1,3}$")


def framework_problem(version: VersionSpec) -> tuple[str, str] | None:
    """(field, what is wrong and the fix) for a version's framework settings, or None."""
    if version.framework is None:
        for field in ("framework_version", "py_version"):
            if getattr(version, field) is not None:
                return field, f"{field} applies to a prebuilt framework container: set framework"
        return None
    what = f"framework {version.framework!r}"
    if version.image is not None:
        return "framework", (
            f"{what} and image {version.image!r} both name the container: keep image for your "
            "own serving image, or framework for the platform's prebuilt one"
        )
    if version.predictor is not None:
        return "predictor", (
            f"{what}: the platform's container does not read predictor (an endpointkit server "
            "setting); put model_fn/predict_fn in the model's code/inference.py"
        )
    if version.model is None:
        return "model", f"{what} serves a model directory: set model"
    if version.framework_version is None:
        return "framework_version", (
            f"{what} needs framework_version, the container's version (e.g. '1.2-1')"
        )
    if not FRAMEWORK_VERSION.match(version.framework_version):
        return "framework_version", (
            f"framework_version {version.framework_version!r} is not a version: use e.g. "
            "'1.2-1' or '2.1'"
        )
    if version.py_version is not None and not PY_VERSION.match(version.py_version):
        return "py_version", f"py_version {version.py_version!r}: use e.g. 'py3' or 'py310'"
    return None
