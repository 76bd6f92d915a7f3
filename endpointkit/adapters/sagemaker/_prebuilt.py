"""SageMaker's prebuilt framework containers: the image URI and the environment they need.

The image comes from the SageMaker Python SDK's `image_uris.retrieve` (its per-region account
and tag tables are the only maintained source): `sagemaker.core.image_uris` in SDK v3 (the
`sagemaker-core` package, the lightest that has it: the `prebuilt` extra), or
`sagemaker.image_uris` in SDK v2. Both are imported only when a framework version is deployed
(the import takes seconds).

A model directory with a SageMaker inference-toolkit script (`code/inference.py`) gets the
environment the SDK gives a repacked model, so AWS's container runs that script:
- the scikit-learn (and XGBoost) containers load the user module from `env.ServingEnv()` of
  sagemaker-containers, whose `module_name` is SAGEMAKER_PROGRAM and `module_dir` is
  SAGEMAKER_SUBMIT_DIRECTORY (aws/sagemaker-scikit-learn-container,
  src/sagemaker_sklearn_container/serving.py and serving_mms.py); without them no script runs;
- the PyTorch container (sagemaker-inference-toolkit) defaults to `inference.py` in
  /opt/ml/model/code and reads SAGEMAKER_PROGRAM (aws/sagemaker-inference-toolkit,
  src/sagemaker_inference/environment.py, parameters.py), so the same two variables are right
  there too.
SageMaker unpacks model.tar.gz into /opt/ml/model, so `code/` in the archive (`pack_model`
keeps the directory's layout) is /opt/ml/model/code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from endpointkit.adapters.sagemaker._errors import BACKEND
from endpointkit.errors import MissingDependency, ValidationError
from endpointkit.spec import VersionSpec

__all__ = ["EXTRA", "framework_environment", "image_uris", "lookup_image", "toolkit_script"]

EXTRA = "prebuilt"
MODEL_DIR = "/opt/ml/model"
TOOLKIT_SCRIPT = "inference.py"


def image_uris(what: str, version: str) -> Any:
    """The SDK's `image_uris` module; MissingDependency naming the extra if neither SDK is here."""
    try:
        from sagemaker.core import image_uris as found  # SDK v3 (sagemaker-core >= 2)
    except ImportError:
        try:
            from sagemaker import image_uris as found  # SDK v2
        except ImportError as exc:
            from endpointkit.extras import install_hint

            raise MissingDependency(
                f"{what} needs the SageMaker Python SDK to look up the prebuilt image URI.",
                hint=f"{install_hint(EXTRA)} (installs sagemaker-core), or give the version "
                "an 'image' (the full ECR image URI).",
                backend=BACKEND,
                operation="deploy",
                version=version,
            ) from exc
    return found


def lookup_image(
    framework: str,
    framework_version: str | None,
    *,
    py_version: str | None,
    region: str,
    instance_type: str,
    version: str,
) -> str:
    """The prebuilt inference image URI for `framework` in `region` on `instance_type`
    (cpu or gpu follows from it); ValidationError with the SDK's reason if there is none."""
    what = f"framework {framework!r} {framework_version or ''}".rstrip()
    module = image_uris(what, version)
    try:
        return str(
            module.retrieve(
                framework=framework,
                region=region,
                version=framework_version,
                py_version=py_version,
                instance_type=instance_type,
                image_scope="inference",
            )
        )
    except ValueError as exc:
        raise ValidationError(
            f"version {version!r}: no prebuilt SageMaker image for {what} in {region} on "
            f"{instance_type}: {exc}",
            hint="Pick a version (and py_version) from the list above, or give an 'image'.",
            backend=BACKEND,
            operation="deploy",
            version=version,
        ) from None


def toolkit_script(version: VersionSpec) -> bool:
    """Whether the version's local model directory has `code/inference.py`."""
    model = version.model
    if model is None or "://" in model.removeprefix("file://"):
        return False
    return (Path(model.removeprefix("file://")) / "code" / TOOLKIT_SCRIPT).is_file()


def framework_environment(version: VersionSpec) -> dict[str, str]:
    """SAGEMAKER_PROGRAM / SAGEMAKER_SUBMIT_DIRECTORY for a framework version whose local
    model directory has `code/inference.py` (empty otherwise; the version's env wins)."""
    if version.framework is None or not toolkit_script(version):
        return {}
    return {
        "SAGEMAKER_PROGRAM": TOOLKIT_SCRIPT,
        "SAGEMAKER_SUBMIT_DIRECTORY": f"{MODEL_DIR}/code",
    }
