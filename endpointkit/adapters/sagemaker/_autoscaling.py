"""Instance counts and Application Auto Scaling for SageMaker variants.

A variant's instance count changes in place with UpdateEndpointWeightsAndCapacities; its range
and targets are a scalable target plus one target-tracking policy per target. Changing the
count deregisters autoscaling first so the two cannot fight; a refused change puts back what
was there.

An asynchronous version with `async_inference.scale_to_zero` is registered as AWS documents
for asynchronous endpoints (docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html):
a scalable target from 0 to max_replicas, a target-tracking policy on the customized metric
ApproximateBacklogSizePerInstance (namespace AWS/SageMaker, dimension EndpointName), and, to
scale out from zero (target tracking alone waits until the backlog exceeds its target), a
step-scaling policy (+1 instance) that a CloudWatch alarm on HasBacklogWithoutCapacity
triggers. The alarm goes with the variant's autoscaling: `deregister` deletes it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from endpointkit.adapters.sagemaker._client import Aws
from endpointkit.adapters.sagemaker._history import History, HistoryDoc
from endpointkit.adapters.sagemaker._state import EndpointReader
from endpointkit.errors import EndpointKitError, NotFound
from endpointkit.spec import Autoscaling, Scaling, VersionSpec
from endpointkit.state import EndpointState

__all__ = ["SCALABLE_DIMENSION", "Autoscaler", "Registration", "backlog_scaled", "registration"]

log = logging.getLogger("endpointkit.sagemaker")

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
_INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
_CPU_METRIC = "CPUUtilization"
_BACKLOG_METRIC = "ApproximateBacklogSizePerInstance"
_NO_CAPACITY_METRIC = "HasBacklogWithoutCapacity"
#: The target AWS's guide uses for ApproximateBacklogSizePerInstance.
DEFAULT_BACKLOG_TARGET = 5.0
_POLICY_CONFIGS = (
    "TargetTrackingScalingPolicyConfiguration",
    "StepScalingPolicyConfiguration",
    "PredictiveScalingPolicyConfiguration",
)


@dataclass(frozen=True)
class Registration:
    """A variant's scalable target and scaling policies, as Application Auto Scaling described
    them."""

    target: dict[str, Any]
    policies: list[dict[str, Any]]


class Autoscaler:
    """Reads and changes variants' instance counts and autoscaling."""

    def __init__(self, aws: Aws, reader: EndpointReader, history: History) -> None:
        self._aws = aws
        self._reader = reader
        self._history = history

    def live(self, state: EndpointState) -> dict[str, Scaling]:
        """Each instance-backed version's scaling: its count, or its autoscaling range and
        targets (two calls per autoscaled variant). PermissionDenied if that is not readable."""
        variants = [
            v
            for v in state.versions
            if not v.details.get("serverless") and not v.details.get("shadow")
        ]
        if not variants:
            return {}
        resources = {
            f"endpoint/{state.name}/variant/{v.details.get('variant', v.name)}": v for v in variants
        }
        targets = self._targets(state.name, list(resources), "scale")
        ranges = {t["ResourceId"]: (int(t["MinCapacity"]), int(t["MaxCapacity"])) for t in targets}
        result: dict[str, Scaling] = {}
        for resource, version in resources.items():
            if resource not in ranges:
                if version.replicas:
                    count = int(version.replicas)
                    result[version.name] = Scaling(min_replicas=count, max_replicas=count)
                continue
            low, high = ranges[resource]
            if low == 0:
                continue  # scaled on the backlog (scale_to_zero): the spec's section says how
            result[version.name] = Scaling(
                min_replicas=low,
                max_replicas=high,
                autoscaling=self._live_policy(state.name, resource),
            )
        return result

    def _live_policy(self, endpoint: str, resource: str) -> Autoscaling | None:
        """The variant's target-tracking policies as one Autoscaling (one policy per target);
        None if none tracks a metric endpointkit sets."""
        policies = self._policies(endpoint, resource, "scale")
        targets: dict[str, int] = {}
        cooldowns: dict[str, int] = {}
        for policy in policies:
            config = policy.get("TargetTrackingScalingPolicyConfiguration")
            metric = _tracked_metric(config) if config else None
            if config is None or metric is None or metric in targets:
                continue
            if policy.get("ResourceId") != resource:
                continue
            targets[metric] = round(float(config["TargetValue"]))
            # endpointkit writes the same cooldowns into each policy; the first one is read.
            cooldowns = cooldowns or {
                "scale_in_cooldown_s": int(config.get("ScaleInCooldown", 300)),
                "scale_out_cooldown_s": int(config.get("ScaleOutCooldown", 60)),
            }
        if not targets:
            return None
        return Autoscaling(
            target_invocations_per_replica=targets.get("invocations"),
            target_cpu_utilization=targets.get("cpu"),
            **cooldowns,
        )

    def _targets(self, endpoint: str, resources: list[str], operation: str) -> list[dict[str, Any]]:
        """DescribeScalableTargets of the variants named by their `resources` ids."""
        targets: list[dict[str, Any]] = self._aws.call(
            "application-autoscaling",
            "describe_scalable_targets",
            operation=operation,
            endpoint=endpoint,
            ServiceNamespace="sagemaker",
            ResourceIds=resources,
            ScalableDimension=SCALABLE_DIMENSION,
        ).get("ScalableTargets", [])
        return targets

    def _policies(self, endpoint: str, resource: str, operation: str) -> list[dict[str, Any]]:
        """DescribeScalingPolicies of the variant named by its `resource` id."""
        policies: list[dict[str, Any]] = self._aws.call(
            "application-autoscaling",
            "describe_scaling_policies",
            operation=operation,
            endpoint=endpoint,
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=SCALABLE_DIMENSION,
        ).get("ScalingPolicies", [])
        return policies

    def set_instance_count(self, name: str, version: str, count: int) -> None:
        """UpdateEndpointWeightsAndCapacities with `count` instances for `version`; a lost
        answer is not re-sent blindly (`Aws.mutate`): the endpoint already asks for `count`."""
        desired = [{"VariantName": version, "DesiredInstanceCount": count}]
        self._aws.mutate(
            "update_endpoint_weights_and_capacities",
            operation="scale",
            endpoint=name,
            version=version,
            applied=lambda: self._reader.asks_for(name, "scale", "DesiredInstanceCount", desired),
            EndpointName=name,
            DesiredWeightsAndCapacities=desired,
        )

    def put_back(
        self,
        name: str,
        version: str,
        removed: Registration | None,
        before: Scaling | None,
        count: int,
        error: EndpointKitError,
    ) -> None:
        """After a refused scale: register again what was deregistered for the change, and say in
        `error` what state the variant is left in (history records a failed put-back)."""
        if removed is None:
            with contextlib.suppress(EndpointKitError):  # the error raised says what failed
                self.deregister(name, version)  # a half-done register
            return
        try:
            self.deregister(name, version)  # a half-done register
            self._restore(name, version, removed)
        except EndpointKitError as failure:
            reason = failure.message
            instances = f"{count} fixed instance{'s' if count != 1 else ''}"
            left = f"{version!r} now has {instances} and no autoscaling"
            error.message = (
                f"{error.message} Its autoscaling had been removed for the change and could "
                f"not be put back ({reason}): {left}."
            )
            error.hint = (
                f"{error.hint} Then apply the spec again: its plan registers the autoscaling."
            ).strip()
            log.warning("scale of %r on %r failed and %s", version, name, left)

            def record(doc: HistoryDoc) -> None:
                doc.append(
                    "failed",
                    version=version,
                    message=f"scale of {version} failed and its autoscaling could not be put "
                    f"back: {left} ({reason})",
                )

            with contextlib.suppress(EndpointKitError):  # the raised error says it already
                self._history.update(name, record)
            return
        kept = before.describe() if before is not None else "its scaling"
        error.message = (
            f"{error.message} Nothing was scaled: {version!r} keeps {kept}; "
            "its autoscaling was put back."
        )

    def register(self, endpoint: str, version: str, spec: dict[str, Any]) -> None:
        """Register the variant's range and one target-tracking policy per target: Application
        Auto Scaling scales out when any policy asks and in only when all of them allow."""
        self._on_target(
            "register_scalable_target",
            endpoint,
            version,
            MinCapacity=int(spec["min"]),
            MaxCapacity=int(spec["max"]),
        )
        cooldowns: dict[str, Any] = {
            "ScaleInCooldown": int(spec.get("scale_in_cooldown_s", 300)),
            "ScaleOutCooldown": int(spec.get("scale_out_cooldown_s", 60)),
        }
        metrics: list[tuple[str, float, dict[str, Any]]] = []
        if spec.get("target_invocations_per_replica") is not None:
            predefined = {"PredefinedMetricType": _INVOCATIONS_METRIC}
            metrics.append(
                (
                    "invocations",
                    float(spec["target_invocations_per_replica"]),
                    {"PredefinedMetricSpecification": predefined},
                )
            )
        if spec.get("target_cpu_utilization") is not None:
            customized = {
                "MetricName": _CPU_METRIC,
                "Namespace": "/aws/sagemaker/Endpoints",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": endpoint},
                    {"Name": "VariantName", "Value": version},
                ],
                "Statistic": "Average",
                "Unit": "Percent",
            }
            metrics.append(
                (
                    "cpu",
                    float(spec["target_cpu_utilization"]),
                    {"CustomizedMetricSpecification": customized},
                )
            )
        if spec.get("backlog") is not None:
            self._register_backlog(endpoint, version, float(spec["backlog"]))
        for metric, value, specification in metrics:
            self._on_target(
                "put_scaling_policy",
                endpoint,
                version,
                PolicyName=f"endpointkit-{endpoint}-{version}-{metric}",
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": value,
                    **specification,
                    **cooldowns,
                },
            )

    def deregister(self, endpoint: str, version: str) -> Registration | None:
        """Delete the variant's scaling policies and scalable target; returns what was there
        (for `_restore`), None if it had no scalable target."""
        resource = f"endpoint/{endpoint}/variant/{version}"
        common = _scaling_key(endpoint, version)
        targets = self._targets(endpoint, [resource], "autoscaling")
        targets = [t for t in targets if t.get("ResourceId") == resource]
        if not targets:
            return None
        policies = [
            policy
            for policy in self._policies(endpoint, resource, "autoscaling")
            if policy.get("ResourceId") == resource
        ]
        for policy in policies:
            with contextlib.suppress(NotFound):
                self._aws.call(
                    "application-autoscaling",
                    "delete_scaling_policy",
                    operation="autoscaling",
                    endpoint=endpoint,
                    PolicyName=policy["PolicyName"],
                    **common,
                )
        if any(p["PolicyName"] == _from_zero_policy(endpoint, version) for p in policies):
            self._aws.call(  # DeleteAlarms ignores names that do not exist
                "cloudwatch",
                "delete_alarms",
                operation="autoscaling",
                endpoint=endpoint,
                version=version,
                AlarmNames=[_alarm_name(endpoint, version)],
            )
        with contextlib.suppress(NotFound):
            self._aws.call(
                "application-autoscaling",
                "deregister_scalable_target",
                operation="autoscaling",
                endpoint=endpoint,
                **common,
            )
        return Registration(target=targets[0], policies=policies)

    def _restore(self, endpoint: str, version: str, removed: Registration) -> None:
        """Register again a scalable target and policies as `deregister` found them
        (names and configurations kept, so policies endpointkit did not write come back too)."""
        target: dict[str, Any] = {
            "MinCapacity": int(removed.target["MinCapacity"]),
            "MaxCapacity": int(removed.target["MaxCapacity"]),
        }
        if removed.target.get("SuspendedState"):
            target["SuspendedState"] = removed.target["SuspendedState"]
        # RoleARN is left out: SageMaker variants scale with the service-linked role, and
        # passing a role would need iam:PassRole.
        self._on_target("register_scalable_target", endpoint, version, **target)
        for policy in removed.policies:
            configuration = {k: policy[k] for k in _POLICY_CONFIGS if policy.get(k)}
            answer = self._on_target(
                "put_scaling_policy",
                endpoint,
                version,
                PolicyName=policy["PolicyName"],
                PolicyType=policy["PolicyType"],
                **configuration,
            )
            if policy["PolicyName"] == _from_zero_policy(endpoint, version):
                self._put_alarm(endpoint, version, str(answer["PolicyARN"]))

    def _register_backlog(self, endpoint: str, version: str, target: float) -> None:
        """The backlog target tracking, the step policy that scales out from zero, and the
        HasBacklogWithoutCapacity alarm that triggers it (values as in AWS's guide)."""
        per_endpoint = [{"Name": "EndpointName", "Value": endpoint}]
        self._on_target(
            "put_scaling_policy",
            endpoint,
            version,
            PolicyName=f"endpointkit-{endpoint}-{version}-backlog",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": target,
                "CustomizedMetricSpecification": {
                    "MetricName": _BACKLOG_METRIC,
                    "Namespace": "AWS/SageMaker",
                    "Dimensions": per_endpoint,
                    "Statistic": "Average",
                },
                "ScaleInCooldown": 600,
                "ScaleOutCooldown": 300,
            },
        )
        answer = self._on_target(
            "put_scaling_policy",
            endpoint,
            version,
            PolicyName=_from_zero_policy(endpoint, version),
            PolicyType="StepScaling",
            StepScalingPolicyConfiguration={
                "AdjustmentType": "ChangeInCapacity",
                "MetricAggregationType": "Average",
                "Cooldown": 300,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
            },
        )
        self._put_alarm(endpoint, version, str(answer["PolicyARN"]))

    def _on_target(self, method: str, endpoint: str, version: str, **params: Any) -> Any:
        """One Application Auto Scaling call on the variant's scalable target (its key added)."""
        return self._aws.call(
            "application-autoscaling",
            method,
            operation="autoscaling",
            endpoint=endpoint,
            version=version,
            **params,
            **_scaling_key(endpoint, version),
        )

    def _put_alarm(self, endpoint: str, version: str, policy_arn: str) -> None:
        """The alarm that runs the from-zero step policy while requests wait with no instance."""
        self._aws.call(
            "cloudwatch",
            "put_metric_alarm",
            operation="autoscaling",
            endpoint=endpoint,
            version=version,
            AlarmName=_alarm_name(endpoint, version),
            AlarmDescription=f"endpointkit: scale {version!r} of {endpoint!r} out from zero",
            MetricName=_NO_CAPACITY_METRIC,
            Namespace="AWS/SageMaker",
            Statistic="Average",
            EvaluationPeriods=2,
            DatapointsToAlarm=2,
            Threshold=1.0,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="missing",
            Dimensions=[{"Name": "EndpointName", "Value": endpoint}],
            Period=60,
            AlarmActions=[policy_arn],
        )


def registration(version: VersionSpec) -> dict[str, Any] | None:
    """What `Autoscaler.register` registers once `version` is live: its autoscaling range and
    targets, or 0 to max_replicas on the backlog (scale_to_zero); None for neither."""
    section = version.async_inference
    if section is not None and section.scale_to_zero:
        return {
            "min": 0,
            "max": version.resources.max_replicas,
            "backlog": section.target_backlog_per_replica or DEFAULT_BACKLOG_TARGET,
        }
    if version.autoscaling is None:
        return None
    return {
        "min": version.resources.min_replicas,
        "max": version.resources.max_replicas,
        **version.autoscaling.model_dump(mode="json"),
    }


def backlog_scaled(version: VersionSpec) -> bool:
    """True when the version scales on the backlog, to zero (async_inference.scale_to_zero)."""
    return version.async_inference is not None and version.async_inference.scale_to_zero


def _from_zero_policy(endpoint: str, version: str) -> str:
    return f"endpointkit-{endpoint}-{version}-from-zero"


def _alarm_name(endpoint: str, version: str) -> str:
    return f"endpointkit-{endpoint}-{version}-has-backlog-without-capacity"


def _scaling_key(endpoint: str, version: str) -> dict[str, Any]:
    """The fields that name a variant's scalable target in Application Auto Scaling."""
    return {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{endpoint}/variant/{version}",
        "ScalableDimension": SCALABLE_DIMENSION,
    }


def _tracked_metric(config: Mapping[str, Any]) -> Literal["invocations", "cpu"] | None:
    """Which Autoscaling target a target-tracking configuration sets, if one."""
    predefined = config.get("PredefinedMetricSpecification") or {}
    if predefined.get("PredefinedMetricType") == _INVOCATIONS_METRIC:
        return "invocations"
    customized = config.get("CustomizedMetricSpecification") or {}
    if customized.get("MetricName") == _CPU_METRIC:
        return "cpu"
    return None
