"""Health probes of a version's container: backend settings, a version's `health`, and the
Vertex AI ModelContainerSpec fields they become (startup_probe, health_probe,
deployment_timeout). Probes hit the server's own health route, which answers 200 only once
the model is loaded; a slow model needs a generous startup probe rather than a late first
health check."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from endpointkit.adapters.vertex._errors import BACKEND
from endpointkit.errors import ValidationError
from endpointkit.spec import VersionSpec

__all__ = [
    "CONTAINER_PORT",
    "HEALTH_ROUTE",
    "PROBE_FIELDS",
    "STARTUP_PROBE_PERIOD_S",
    "apply_health",
    "container_health",
    "probe_settings",
]

CONTAINER_PORT = 8080
HEALTH_ROUTE = "/health"  # endpointkit.serving's AIP_HEALTH_ROUTE default
PROBE_FIELDS = frozenset(
    {
        "period_seconds",
        "timeout_seconds",
        "failure_threshold",
        "success_threshold",
        "initial_delay_seconds",
    }
)
#: Period of the startup probe a version's `health.startup_timeout_s` becomes (Vertex's default).
STARTUP_PROBE_PERIOD_S = 10


def probe_settings(name: str, settings: Mapping[str, Any] | None) -> dict[str, int]:
    """Validate a probe setting such as {"period_seconds": 10, "failure_threshold": 60}."""
    if not settings:
        return {}
    unknown = sorted(set(settings) - PROBE_FIELDS)
    if unknown:
        raise ValidationError(
            f"{name} has unknown field(s) {', '.join(unknown)}.",
            hint=f"Use {', '.join(sorted(PROBE_FIELDS))}.",
            backend=BACKEND,
        )
    probe: dict[str, int] = {}
    for key, value in settings.items():
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if number < 0 or (key != "initial_delay_seconds" and number == 0):
            raise ValidationError(
                f"{name}.{key} must be a positive whole number of seconds or attempts, "
                f"got {value!r}.",
                backend=BACKEND,
            )
        probe[key] = number
    return probe


def container_health(
    version: VersionSpec,
    startup_probe: Mapping[str, int],
    health_probe: Mapping[str, int],
    deployment_timeout_s: int | None,
) -> tuple[dict[str, int], dict[str, int], int | None]:
    """(startup probe, health probe, deployment timeout) for `version`'s container.

    The version's `health` fields override the backend settings, which stay the defaults.
    `startup_timeout_s` becomes a startup probe every STARTUP_PROBE_PERIOD_S whose failure
    threshold covers it (after any initial delay) and raises the deployment timeout to it;
    `period_s`, `timeout_s` and `failure_threshold` go to the health probe.
    """
    startup, health = dict(startup_probe), dict(health_probe)
    check = version.health
    if check is None:
        return startup, health, deployment_timeout_s
    for field, value in (
        ("period_seconds", check.period_s),
        ("timeout_seconds", check.timeout_s),
        ("failure_threshold", check.failure_threshold),
    ):
        if value is not None:
            health[field] = value
    if check.startup_timeout_s is not None:
        delay = startup.get("initial_delay_seconds", 0)
        if delay >= check.startup_timeout_s:  # a delay past the budget would never probe
            del startup["initial_delay_seconds"]
            delay = 0
        startup["period_seconds"] = STARTUP_PROBE_PERIOD_S
        startup["failure_threshold"] = max(
            1, math.ceil((check.startup_timeout_s - delay) / STARTUP_PROBE_PERIOD_S)
        )
        # Never shorter than the backend's setting: the deployment timeout may also cover
        # provisioning and the image pull (the docs do not say), which the budget does not.
        deployment_timeout_s = max(deployment_timeout_s or 0, check.startup_timeout_s)
    return startup, health, deployment_timeout_s


def apply_health(
    container: Any,
    version: VersionSpec,
    startup_probe: Mapping[str, int],
    health_probe: Mapping[str, int],
    deployment_timeout_s: int | None,
) -> None:
    """Set the probes and deployment timeout of `container` (a ModelContainerSpec)."""
    from google.cloud.aiplatform_v1 import Probe

    startup, health, timeout_s = container_health(
        version, startup_probe, health_probe, deployment_timeout_s
    )
    if timeout_s:
        from google.protobuf import duration_pb2

        container.deployment_timeout = duration_pb2.Duration(seconds=timeout_s)
    for field, settings in (("startup_probe", startup), ("health_probe", health)):
        if settings:
            http_get = Probe.HttpGetAction(path=HEALTH_ROUTE, port=CONTAINER_PORT)
            setattr(container, field, Probe(http_get=http_get, **settings))
