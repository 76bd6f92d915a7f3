"""Amazon SageMaker backend: boto3 (sagemaker, sagemaker-runtime, application-autoscaling, s3).

Mapping (DESIGN.md "Backends"): a version is a SageMaker Model plus a ProductionVariant named
after the version; versions arrive with UpdateEndpoint on a new EndpointConfig, keeping live
weights and instance counts (RetainAllVariantProperties); traffic moves with
UpdateEndpointWeightsAndCapacities; a shadow is a ShadowProductionVariant; invoke pins a
version with TargetVariant. boto3 is imported on first use, never by `import endpointkit`.
"""

from __future__ import annotations

from endpointkit.adapters.sagemaker.backend import (
    AsyncInvocation,
    DeploymentConfig,
    SageMakerBackend,
    SettingIgnoredWarning,
)

__all__ = ["AsyncInvocation", "DeploymentConfig", "SageMakerBackend", "SettingIgnoredWarning"]
