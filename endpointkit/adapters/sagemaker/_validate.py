"""SageMaker's own rules for a version, checked before the first call.

The base class has already refused features the backend lacks (`Backend._validate_version`);
these are SageMaker's limits and the settings the backend needs (an image, a role).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from endpointkit.adapters.sagemaker._errors import BACKEND
from endpointkit.adapters.sagemaker._variants import Variants
from endpointkit.errors import SettingIgnoredWarning, ValidationError, warn_setting_ignored
from endpointkit.spec import Scaling, VersionSpec

__all__ = [
    "SERVERLESS_STARTUP_S",
    "SettingIgnoredWarning",
    "shadow_refusal",
    "validate",
    "warn_unheld_max",
]

#: Serverless containers must download the model and answer /ping within 3 minutes, a fixed
#: budget: ProductionVariant's startup timeouts are for instance-backed variants
#: (docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-invoke.html).
SERVERLESS_STARTUP_S = 180
_ACCELERATED_FAMILIES = ("p", "g", "inf", "trn", "dl")


def warn_unheld_max(scaling: Scaling, where: str) -> None:
    """Warn when `scaling` has a max_replicas that SageMaker cannot hold: without
    autoscaling a variant has one instance count, min_replicas."""
    if scaling.autoscaling is not None or scaling.max_replicas == scaling.min_replicas:
        return
    warn_setting_ignored(
        f"{where}: max_replicas={scaling.max_replicas} is ignored on the sagemaker backend "
        f"without autoscaling; the variant runs min_replicas={scaling.min_replicas} "
        "instances. Add autoscaling to scale between them, or set max_replicas to "
        "min_replicas."
    )


def validate(
    variants: Variants, name: str, version: VersionSpec, config: dict[str, Any] | None = None
) -> None:
    """Raise ValidationError if `version` breaks a SageMaker rule, for endpoint `name` (and
    its live `config`, when adding to one). A prebuilt framework image (`framework`, or a
    `sagemaker:<framework>:<version>` image) is resolved here, so a bad one fails before any
    change."""
    context: dict[str, Any] = {
        "backend": BACKEND,
        "operation": "deploy",
        "endpoint": name,
        "version": version.name,
    }
    if not (version.image or version.framework or variants.image):
        raise ValidationError(
            f"version {version.name!r} names no serving image and the sagemaker backend has "
            "no default.",
            hint="Set the version's 'image' (or 'framework' for a prebuilt SageMaker "
            "container), or the 'image' setting (an ECR URI of the endpointkit serving image).",
            **context,
        )
    variants.image_for(version)  # a prebuilt framework image resolves now
    if not variants.role_arn:
        raise ValidationError(
            "the sagemaker backend needs an execution role for its models.",
            hint="Pass the 'role_arn' setting or set ENDPOINTKIT_SAGEMAKER_ROLE_ARN.",
            **context,
        )
    model = version.model
    if model is not None:
        if model.startswith("gs://"):
            raise ValidationError(
                f"version {version.name!r}: SageMaker reads models from S3, not {model!r}.",
                hint="Copy the artifact to s3:// or give a local directory to upload.",
                **context,
            )
        if not model.startswith("s3://") and not Path(model.removeprefix("file://")).exists():
            raise ValidationError(
                f"version {version.name!r}: model path {model!r} does not exist.", **context
            )
    if len(version.effective_env()) + 1 > 100:
        raise ValidationError(
            f"version {version.name!r} has {len(version.effective_env())} environment "
            "entries; SageMaker allows 100 and endpointkit adds ENDPOINTKIT_VERSION.",
            **context,
        )
    resources = version.resources
    instance = resources.instance_type or variants.instance_type
    if (
        version.serverless is None
        and resources.accelerator_count
        and not instance.split(".")[1].startswith(_ACCELERATED_FAMILIES)
    ):
        raise ValidationError(
            f"version {version.name!r} asks for accelerators but {instance} has none.",
            hint="Pick a GPU or Inferentia instance type, e.g. ml.g4dn.xlarge.",
            **context,
        )
    if version.async_inference is not None:
        for uri in (version.async_inference.output_path, version.async_inference.failure_path):
            if uri is not None and not uri.startswith("s3://"):
                raise ValidationError(
                    f"version {version.name!r}: asynchronous output must go to s3://, not {uri!r}.",
                    **context,
                )
    startup = version.health.startup_timeout_s if version.health else None
    if version.serverless is not None and startup and startup > SERVERLESS_STARTUP_S:
        raise ValidationError(
            f"version {version.name!r} is serverless and asks for "
            f"health.startup_timeout_s={startup}; SageMaker gives serverless containers a "
            f"fixed {SERVERLESS_STARTUP_S} s to download the model and answer /ping.",
            hint=f"Lower startup_timeout_s to {SERVERLESS_STARTUP_S} or less, or deploy the "
            "version on instances (remove 'serverless').",
            **context,
        )
    if version.serverless is not None and variants.data_capture:
        raise ValidationError(
            f"version {version.name!r} is serverless; SageMaker cannot capture data for "
            "serverless endpoints.",
            hint="Turn the data_capture setting off for this endpoint.",
            **context,
        )
    if config is not None:
        wanted = variants.async_config(version)
        live = config.get("AsyncInferenceConfig")
        if (wanted is None) != (live is None) or (wanted and live and wanted != live):
            raise ValidationError(
                f"version {version.name!r} and endpoint {name!r} disagree on asynchronous "
                "inference; SageMaker sets it per endpoint.",
                hint="Give every version of an endpoint the same async_inference (or none).",
                **context,
            )
        live_serverless = any("ServerlessConfig" in v for v in config.get("ProductionVariants", []))
        if live_serverless:
            # docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html, "Feature
            # exclusions": serverless endpoints do not support multiple production variants.
            raise ValidationError(
                f"endpoint {name!r} is serverless, and SageMaker serverless endpoints take one "
                f"production variant, so version {version.name!r} cannot be added beside it.",
                hint="Deploy the new version to its own endpoint and move clients over, or use "
                "instance-backed versions (remove 'serverless') to split traffic.",
                **context,
            )
        if config.get("ProductionVariants") and live_serverless != (version.serverless is not None):
            raise ValidationError(
                f"version {version.name!r} and endpoint {name!r} mix serverless and "
                "instance-based variants, which SageMaker does not allow.",
                **context,
            )


def shadow_refusal(config: dict[str, Any]) -> str | None:
    """Why SageMaker cannot shadow on an endpoint with live `config`, or None if it can.

    docs.aws.amazon.com/sagemaker/latest/dg/shadow-tests-exclusions.html: serverless and
    asynchronous endpoints (among others) cannot have shadow variants; the request fails
    validation.
    """
    if config.get("AsyncInferenceConfig"):
        return "it uses asynchronous inference"
    if any("ServerlessConfig" in v for v in config.get("ProductionVariants", [])):
        return "it is serverless"
    return None
