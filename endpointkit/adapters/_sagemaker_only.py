"""Settings of the `async_inference` section that only SageMaker applies: SNS notifications
(`success_topic`, `error_topic`) and scaling to zero on the backlog (`scale_to_zero`,
`target_backlog_per_replica`). The mock and local backends queue and answer requests without
them and say so with a SettingIgnoredWarning naming the fields and the backend.
"""

from __future__ import annotations

from endpointkit.errors import warn_setting_ignored
from endpointkit.spec import VersionSpec

__all__ = ["SAGEMAKER_ONLY", "warn_sagemaker_only"]

SAGEMAKER_ONLY = ("success_topic", "error_topic", "scale_to_zero", "target_backlog_per_replica")


def warn_sagemaker_only(backend: str, endpoint: str, version: VersionSpec) -> None:
    """Warn when `version` asks for SageMaker-only async_inference settings."""
    section = version.async_inference
    if section is None:
        return
    asked = [f for f in SAGEMAKER_ONLY if getattr(section, f) not in (None, False)]
    if not asked:
        return
    warn_setting_ignored(
        f"async_inference {', '.join(asked)} of version {version.name!r} on endpoint "
        f"{endpoint!r} is not applied: the {backend} backend sends no SNS notifications and "
        "does not scale to zero (SageMaker only). Requests are queued and answered as "
        "without it; read results with result()."
    )
