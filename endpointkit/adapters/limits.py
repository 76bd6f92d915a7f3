"""Each platform's capabilities and request limits as plain constants, importable without any
cloud SDK: the real backends declare theirs from here, and the mock's `like=` profiles take
the same values, so a test on `mock_endpoints(like="vertex")` meets Vertex AI's limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from endpointkit.adapters.base import Capability

__all__ = ["LOCAL", "PROFILES", "SAGEMAKER", "VERTEX", "VERTEX_DEDICATED", "Limits"]


@dataclass(frozen=True)
class Limits:
    """What one backend accepts before anything is sent."""

    backend: str
    capabilities: frozenset[Capability]
    #: Largest request body in bytes (None: no limit).
    max_payload_bytes: int | None
    #: Longest custom attributes string; 0: the platform refuses them; None: no limit.
    max_custom_attributes: int | None
    #: Why a capability is missing, where the platform says more than the generic hint.
    unsupported_reasons: Mapping[Capability, str] = field(default_factory=dict)


SAGEMAKER = Limits(
    backend="sagemaker",
    capabilities=frozenset(
        {
            Capability.SHADOW,
            Capability.TARGET_VERSION,
            Capability.SERVERLESS,
            Capability.ASYNC_INFERENCE,
            Capability.AUTOSCALING,
            Capability.ACCELERATORS,
            Capability.STREAMING,
            Capability.SCALING,
            Capability.ALARM_GATES,
            # deployment guardrails: blue/green canary, linear or all-at-once UpdateEndpoint
            # with auto-rollback alarms (dg/deployment-guardrails.html)
            Capability.NATIVE_ROLLOUT,
        }
    ),
    max_payload_bytes=6 * 1024 * 1024,  # InvokeEndpoint (research/sagemaker.md)
    max_custom_attributes=1024,  # X-Amzn-SageMaker-Custom-Attributes
)

# Shared public endpoints: no pinning a deployed model, no streaming, 1.5 MB requests
# (research/vertex.md, "Size limits").
VERTEX = Limits(
    backend="vertex",
    capabilities=frozenset({Capability.AUTOSCALING, Capability.ACCELERATORS, Capability.SCALING}),
    max_payload_bytes=1_572_864,
    max_custom_attributes=0,  # rawPredict does not pass them to the container
    unsupported_reasons={
        Capability.ASYNC_INFERENCE: "Vertex AI online endpoints have no asynchronous "
        "invocation: predict answers within the request. For queued work run a batch "
        "prediction job (BatchPredictionJob, inputs and outputs in Cloud Storage or BigQuery), "
        "or call invoke() and wait for the answer.",
    },
)

# Dedicated public endpoints: the Invoke API pins a deployed model and streams; 10 MB requests.
VERTEX_DEDICATED = Limits(
    backend="vertex-dedicated",
    capabilities=VERTEX.capabilities | {Capability.TARGET_VERSION, Capability.STREAMING},
    max_payload_bytes=10 * 1024 * 1024,
    max_custom_attributes=0,
    unsupported_reasons=VERTEX.unsupported_reasons,
)

LOCAL = Limits(
    backend="local",
    capabilities=frozenset(
        {
            Capability.SHADOW,
            Capability.TARGET_VERSION,
            Capability.SCALING,
            Capability.STREAMING,
            Capability.ASYNC_INFERENCE,  # the gateway's durable queue (local/queue.py)
        }
    ),
    max_payload_bytes=6 * 1024 * 1024,
    max_custom_attributes=None,
)

#: `mock_endpoints(like=...)` names.
PROFILES: dict[str, Limits] = {
    limits.backend: limits for limits in (SAGEMAKER, VERTEX, VERTEX_DEDICATED, LOCAL)
}
