"""Vertex AI's prebuilt prediction containers for `VersionSpec.framework`.

The URI comes from the aiplatform SDK's own table,
`google.cloud.aiplatform.helpers.get_prebuilt_prediction_container_uri` (the `vertex` extra
installs google-cloud-aiplatform; its high-level package is imported only here, when a
framework version is deployed, because the import takes seconds). It gives e.g.
`us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-3:latest`, with `europe-` / `asia-`
registries for those regions.

These containers load the model file from artifactUri (`model.joblib` / `model.pkl` for
scikit-learn, `model.bst` / `model.joblib` / `model.pkl` for XGBoost, `model.mar` for PyTorch:
https://cloud.google.com/vertex-ai/docs/model-registry/import-model#pre-built-container)
and run no user code, so a directory with a SageMaker toolkit script (`code/inference.py`) is
refused here: its answers would silently differ from the script's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from endpointkit.adapters.vertex._errors import BACKEND
from endpointkit.errors import ValidationError, warn_setting_ignored
from endpointkit.spec import VersionSpec

__all__ = ["custom_code", "prebuilt_image", "warn_ignored_probes"]

# SageMaker tags carry a container revision ("1.2-1"); Vertex AI's are the framework's
# major.minor ("1.2"), so one spec names the same scikit-learn on both.
_REVISION = re.compile(r"-[0-9]+$")


def custom_code(version: VersionSpec) -> str | None:
    """What in the version asks for custom serving code, or None."""
    if "SAGEMAKER_PROGRAM" in version.env:
        return "env SAGEMAKER_PROGRAM (a SageMaker inference script)"
    model = version.model
    if model is None or "://" in model.removeprefix("file://"):
        return None
    script = Path(model.removeprefix("file://")) / "code" / "inference.py"
    return f"{script} (a SageMaker inference script)" if script.is_file() else None


def prebuilt_image(version: VersionSpec, location: str, *, endpoint: str) -> str:
    """The prebuilt prediction container URI for the version's framework in `location`;
    ValidationError (before any call) if there is none or the model needs custom code."""
    framework = version.framework
    assert framework is not None  # callers check; a programming error otherwise
    context: dict[str, Any] = {
        "backend": BACKEND,
        "operation": "deploy",
        "endpoint": endpoint,
        "version": version.name,
    }
    code = custom_code(version)
    if code is not None:
        raise ValidationError(
            f"version {version.name!r}: Vertex AI's prebuilt {framework} container loads the "
            f"model file and runs no custom code, but the version has {code}; nothing was sent.",
            hint="Serve it in endpointkit's serving image instead (drop 'framework' and set "
            "'image' or the backend's serving_image: it runs code/inference.py), or build a "
            "Custom Prediction Routine image.",
            **context,
        )
    from google.cloud.aiplatform import helpers

    tag = _REVISION.sub("", version.framework_version or "")
    gpu = bool(version.resources.accelerator_type or version.resources.accelerator_count)
    try:
        return str(
            helpers.get_prebuilt_prediction_container_uri(
                framework, tag, region=location, accelerator="gpu" if gpu else "cpu"
            )
        )
    except ValueError as exc:
        raise ValidationError(
            f"version {version.name!r}: no Vertex AI prebuilt container for {framework} "
            f"{tag} ({'gpu' if gpu else 'cpu'}) in {location}: {exc}",
            hint="Pick a framework_version Vertex AI has, or give an 'image'.",
            **context,
        ) from None


def warn_ignored_probes(version: VersionSpec, endpoint: str) -> None:
    """Warn (SettingIgnoredWarning) about health probe settings a prebuilt container cannot
    take: its health route is Vertex AI's per-deployment default, unknown before the deploy,
    so only `startup_timeout_s` (the deployment timeout) applies."""
    health = version.health
    asked = [
        field
        for field in ("period_s", "timeout_s", "failure_threshold")
        if health is not None and getattr(health, field) is not None
    ]
    if asked:
        warn_setting_ignored(
            f"health {' and '.join(asked)} of version {version.name!r} on endpoint "
            f"{endpoint!r} is not applied: a prebuilt {version.framework} container is "
            "checked on Vertex AI's own health route, with Vertex AI's probe defaults."
        )
