"""Native rollouts: SageMaker's deployment guardrails, replacing a version's model in place.

endpointkit gives each version a variant of its own, so its deploys, undeploys and shadow
changes all change the variant set, and deployment guardrails need "the same variant name as
the old endpoint configuration" (dg/deployment-guardrails-exclusions.html): none of them may
carry a DeploymentConfig. The one update that can is the one AWS built guardrails for: an
endpoint serving one version gets a config whose variant keeps its name and runs the new
version's model. SageMaker starts the new fleet, shifts traffic to it by the blue/green policy
(canary, linear or all at once, baking `WaitIntervalInSeconds` between steps) and, if any
auto-rollback alarm goes into ALARM, shifts it back: the endpoint is InService on the old
config again (dg/deployment-guardrails-blue-green.html).

Checked here before any call (the endpoint's shape, then the policy's documented ranges in
`DeploymentConfig`):

- exactly one production variant and no shadow: a native rollout replaces the endpoint's only
  version (multi-variant endpoints are excluded from rolling updates by AWS and would need
  every variant kept; endpointkit shifts traffic between versions client-side instead);
- instance-backed and real-time: canary and linear sizes are shares of "the variant's total
  instance count" (API_TrafficRoutingConfig.html), which a serverless variant does not have,
  and rolling updates exclude serverless endpoints (the exclusions page); endpointkit does not
  run guardrails on asynchronous endpoints, whose queued requests are not routed by weight;
- not Inf1 for canary or linear: "Endpoints that use Inf1 (Inferentia-based) instances" fall
  back to all-at-once shifting with no final bake (the exclusions page), which would ignore
  the policy asked for;
- gates SageMaker can watch: only CloudWatch alarms (API_AutoRollbackConfig.html, 1-10);
  whole seconds, and the waits must fit MaximumExecutionTimeoutInSeconds' 28800 s
  (API_BlueGreenUpdatePolicy.html: the timeout must exceed the waits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from endpointkit.adapters.sagemaker._errors import BACKEND
from endpointkit.adapters.sagemaker._history import Pending
from endpointkit.adapters.sagemaker._validate import validate
from endpointkit.adapters.sagemaker._variants import DeploymentConfig
from endpointkit.errors import NotFound, ValidationError
from endpointkit.spec import AllAtOnce, BlueGreen, Canary, Linear, RolloutStrategy, VersionSpec

if TYPE_CHECKING:
    from collections.abc import Sequence

    from endpointkit.adapters.sagemaker._autoscaling import Autoscaler
    from endpointkit.adapters.sagemaker._client import Aws
    from endpointkit.adapters.sagemaker._state import EndpointReader
    from endpointkit.adapters.sagemaker._variants import Variants

__all__ = [
    "GUARDRAILS_HINT",
    "GUARDRAILS_REFUSED",
    "NativePlan",
    "alarms_firing",
    "plan_native",
    "start_native",
]

GUARDRAILS_REFUSED = (
    "SageMaker deployment guardrails (DeploymentConfig) need the new endpoint config to keep "
    "the same variant names, and {what} changes the endpoint's variants (endpointkit gives "
    "each version its own variant); nothing was changed."
)
GUARDRAILS_HINT = (
    "Use Endpoint.rollout(version, Canary(...) or Linear(...), native=True) to replace the "
    "endpoint's only version in place with SageMaker's own canary or linear shifting and "
    "alarm rollback, or rollout(...) without native=True to shift traffic between versions "
    "client-side with the same CloudWatch alarm gates."
)
#: MaximumExecutionTimeoutInSeconds' upper bound (API_BlueGreenUpdatePolicy.html).
_MAX_EXECUTION_S = 28800


@dataclass(frozen=True)
class NativePlan:
    """What a native rollout sends: the policy, and the live variant it replaces in place."""

    config: DeploymentConfig
    variant: dict[str, Any]
    replaces: str  # the version the variant serves now

    @property
    def variant_name(self) -> str:
        return str(self.variant["VariantName"])


def _policy(strategy: RolloutStrategy) -> DeploymentConfig:
    """The DeploymentConfig for an endpointkit strategy; ValidationError for SageMaker's
    documented limits (DeploymentConfig) and for gates SageMaker cannot watch."""
    gates = strategy.gates
    unwatched = [
        name
        for name, given in (
            ("probe", gates.probe),
            ("max_error_rate", gates.max_error_rate is not None),
            ("max_p99_latency_ms", gates.max_p99_latency_ms is not None),
            ("check", gates.check),
        )
        if given
    ]
    if unwatched:
        raise ValidationError(
            f"a native SageMaker rollout rolls back on CloudWatch alarms only, so the "
            f"{', '.join(unwatched)} gate(s) cannot be watched; nothing was changed.",
            hint="Turn them into CloudWatch alarms (Gates(alarms=[...])), or roll out without "
            "native=True: the client-side rollout runs every gate.",
        )
    if isinstance(strategy, Canary):
        mode, step, wait, waits = "canary", strategy.percent, strategy.bake_s, 1
    elif isinstance(strategy, Linear):
        mode, step, wait = "linear", strategy.step_percent, strategy.interval_s
        waits = math.ceil(100 / step) - 1
    elif isinstance(strategy, (AllAtOnce, BlueGreen)):
        mode, step, wait, waits = "all_at_once", None, strategy.bake_s, 1
    else:  # pragma: no cover - the strategy union is closed
        raise TypeError(f"unknown rollout strategy {strategy!r}")
    if not float(wait).is_integer():
        raise ValidationError(
            f"SageMaker bakes whole seconds (WaitIntervalInSeconds), not {wait:g}.",
            hint="Give the bake or interval in whole seconds.",
        )
    config = DeploymentConfig(
        mode=mode,  # type: ignore[arg-type]
        step_percent=step,
        wait_s=int(wait),
        alarms=tuple(gates.alarms),
    )
    if config.wait_s * waits >= _MAX_EXECUTION_S:
        raise ValidationError(
            f"invalid SageMaker deployment config: {waits} wait(s) of {config.wait_s} s do not "
            f"fit in MaximumExecutionTimeoutInSeconds (at most {_MAX_EXECUTION_S} s, and it "
            "must exceed the waits).",
            hint="Bake for less, or take bigger steps.",
        )
    return config


def plan_native(
    endpoint: str,
    version: VersionSpec,
    strategy: RolloutStrategy,
    config: dict[str, Any],
    versions: dict[str, str],
) -> NativePlan:
    """Check that SageMaker can roll `version` out natively on the endpoint whose live config
    is `config` (`versions`: variant -> version); ValidationError before any call if not."""
    context: dict[str, Any] = {
        "backend": BACKEND,
        "operation": "rollout",
        "endpoint": endpoint,
        "version": version.name,
    }
    production = list(config.get("ProductionVariants", []))
    shadows = list(config.get("ShadowProductionVariants") or [])
    problem: str | None = None
    if shadows:
        problem = (
            f"it has a shadow version ({versions[shadows[0]['VariantName']]}), and a native "
            "rollout replaces the endpoint's only version"
        )
    elif len(production) != 1:
        serving = ", ".join(versions[v["VariantName"]] for v in production)
        problem = (
            f"it serves {len(production)} versions ({serving}), and a native rollout replaces "
            "the endpoint's only version in place (deployment guardrails keep the variant set)"
        )
    elif "ServerlessConfig" in production[0] or version.serverless is not None:
        problem = (
            "serverless variants have no instance fleet for canary or linear steps, which are "
            "shares of the variant's instance count (API_TrafficRoutingConfig), and rolling "
            "updates exclude serverless endpoints (deployment guardrails exclusions)"
        )
    elif config.get("AsyncInferenceConfig") or version.async_inference is not None:
        problem = (
            "it is an asynchronous endpoint: its queued requests are not routed by traffic "
            "weight, so endpointkit does not run deployment guardrails on it"
        )
    if problem is not None:
        raise ValidationError(
            f"SageMaker cannot roll {version.name!r} out natively on {endpoint!r}: {problem}; "
            "nothing was changed.",
            hint="Roll out without native=True: the client-side rollout deploys the version "
            "beside the old one and shifts traffic step by step with the same alarm gates.",
            **context,
        )
    try:
        policy = _policy(strategy)
    except ValidationError as error:
        raise error.with_context(**context) from None
    live = production[0]
    instance_type = str(version.resources.instance_type or live.get("InstanceType") or "")
    if policy.mode != "all_at_once" and instance_type.startswith("ml.inf1."):
        raise ValidationError(
            f"SageMaker ignores {policy.mode} shifting on Inf1 instances ({instance_type}) and "
            "shifts all traffic at once with no final bake (deployment guardrails "
            "exclusions); nothing was changed.",
            hint="Use AllAtOnce(...) for an honest policy, or roll out without native=True.",
            **context,
        )
    return NativePlan(config=policy, variant=dict(live), replaces=versions[live["VariantName"]])


def start_native(
    reader: EndpointReader,
    variants: Variants,
    autoscaler: Autoscaler,
    endpoint: str,
    version: VersionSpec,
    strategy: RolloutStrategy,
) -> Pending:
    """Check everything (`plan_native`, then the version's own rules), create the version's
    Model and a config whose one variant keeps its name and runs that model, and send
    UpdateEndpoint with the DeploymentConfig. Returns the operation now under way."""
    desc, config = reader.live(endpoint, "rollout")
    plan = plan_native(endpoint, version, strategy, config, reader.versions(endpoint, config))
    validate(variants, endpoint, version, config)
    new_type = variants.variant(version, "", 1.0).get("InstanceType")
    if new_type != plan.variant.get("InstanceType"):
        # dg/endpoint-scaling-update.html: an update that changes the instance type of a
        # variant registered with Application Auto Scaling fails (changing its model is the
        # allowed exception).
        scaling = autoscaler.live(reader.state(endpoint, desc, config)).get(plan.replaces)
        if scaling is not None and scaling.autoscaling is not None:
            raise ValidationError(
                f"SageMaker refuses an update that moves the autoscaled variant of "
                f"{plan.replaces!r} from {plan.variant.get('InstanceType')} to {new_type}; "
                "nothing was changed.",
                hint=f"Keep instance_type {plan.variant.get('InstanceType')} for "
                f"{version.name!r}, or roll out without native=True (a variant of its own).",
                backend=BACKEND,
                operation="rollout",
                endpoint=endpoint,
                version=version.name,
            )
    model = variants.ensure_model(endpoint, version)
    variant = {
        **variants.variant(version, model, float(plan.variant.get("InitialVariantWeight", 1.0))),
        "VariantName": plan.variant_name,
    }
    new_config = variants.switch(
        endpoint,
        config,
        desc,
        [variant],
        [],
        exclude_weights=False,
        deployment=plan.config.to_api(),
    )
    return Pending(
        "rollout",
        new_config,
        version=version.name,
        message=f"native {plan.config.mode.replace('_', '-')} rollout of {version.name} in "
        f"place of {plan.replaces} (variant {plan.variant_name})",
        before={plan.replaces: 100},
        after={version.name: 100},
        data={"model": model, "variant": plan.variant_name},
    )


def alarms_firing(aws: Aws, names: Sequence[str], *, endpoint: str) -> list[str]:
    """CloudWatch DescribeAlarms: the named alarms whose state is ALARM; NotFound names the
    alarms that do not exist."""
    found: dict[str, str] = {}
    for page in aws.pages(
        "cloudwatch",
        "describe_alarms",
        operation="rollout",
        endpoint=endpoint,
        AlarmNames=list(names),
    ):
        for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
            found[alarm["AlarmName"]] = alarm.get("StateValue", "")
    missing = [n for n in names if n not in found]
    if missing:
        raise NotFound(
            f"CloudWatch alarm {', '.join(repr(n) for n in missing)} does not exist in "
            f"{aws.region}.",
            hint="Check the alarm names (aws cloudwatch describe-alarms) and the region.",
            backend=BACKEND,
            operation="rollout",
            endpoint=endpoint,
        )
    return [n for n in names if found[n] == "ALARM"]
