"""Errors, retries, validation, ownership, waiting and the platform features beyond the suite."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from endpointkit import Endpoint, VersionSpec
from endpointkit.adapters.sagemaker import SageMakerBackend
from endpointkit.errors import (
    AlreadyExists,
    DeploymentFailed,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    Throttled,
    Timeout,
    ValidationError,
)
from endpointkit.invocation import InvokeRequest
from endpointkit.planner import apply, plan
from endpointkit.spec import EndpointSpec, Scaling, Shadow
from endpointkit.state import Status
from tests.conformance.suite import Versions
from tests.fakes.sagemaker import ACCOUNT, FakeSageMaker

pytestmark = pytest.mark.slow


def test_throttled_calls_are_retried_until_they_pass(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    ep.deploy(versions.echo("v2"), traffic=0, timeout=60)
    before = fake.calls["UpdateEndpointWeightsAndCapacities"]
    fault = fake.inject("UpdateEndpointWeightsAndCapacities", "ThrottlingException", times=2)
    state = ep.set_traffic({"v1": 50, "v2": 50}, timeout=60)
    assert fault.fired == 2
    assert fake.calls["UpdateEndpointWeightsAndCapacities"] - before == 3
    assert state.traffic.serving() == {"v1": 50, "v2": 50}

    fake.inject("UpdateEndpoint", "ThrottlingException", times=1)
    assert ep.deploy(versions.echo("v3"), traffic=0, timeout=60).version("v3") is not None
    fake.inject("DescribeEndpoint", "ThrottlingException", times=2)
    assert ep.status().status is Status.IN_SERVICE


def test_throttling_that_never_ends_surfaces_as_throttled(
    fake: FakeSageMaker,
    make_backend: Callable[..., SageMakerBackend],
    versions: Versions,
    name: str,
) -> None:
    backend = make_backend(retry_attempts=3)
    Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    fault = fake.inject("DescribeEndpoint", "ThrottlingException", times=None)
    try:
        with pytest.raises(Throttled) as caught:
            backend.get(name)
    finally:
        fault.times = 0
    assert caught.value.provider_code == "ThrottlingException"
    assert fault.fired == 3
    assert name in caught.value.message


def test_transient_runtime_faults_are_retried_by_endpoint_invoke(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    ep = Endpoint(name, backend, sleep=lambda _: None)
    fake.inject_runtime("ModelNotReadyException", 429, times=1)
    fake.inject_runtime("ServiceUnavailable", 503, times=1)
    assert ep.predict([[1.0]]).predictions == ["v1"]


def test_a_create_whose_answer_was_lost_is_not_sent_twice(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    before = fake.calls["CreateModel"], fake.calls["CreateEndpointConfig"]
    # The creates go through, but the client sees a 500 (a lost answer): the retry must look
    # before it re-sends (SageMaker would say "already existing", moto would overwrite).
    fake.inject("CreateModel", "InternalFailure", status=500, after=True)
    fake.inject("CreateEndpointConfig", "ServiceUnavailable", status=503, after=True)
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    assert fake.calls["CreateModel"] - before[0] == 1
    assert fake.calls["CreateEndpointConfig"] - before[1] == 1
    assert ep.predict([[1.0]]).predictions == ["v1"]


def test_invalid_versions_are_refused_before_any_call(
    fake: FakeSageMaker, make_backend: Callable[..., SageMakerBackend], versions: Versions
) -> None:
    calls = sum(fake.calls.values())
    no_role = make_backend(role_arn=None)
    with pytest.raises(ValidationError, match="role"):
        no_role.create("sm-invalid", versions.echo("v1"))
    no_image = make_backend(image=None)
    with pytest.raises(ValidationError, match="image"):
        no_image.create("sm-invalid", versions.echo("v1"))
    assert sum(fake.calls.values()) == calls  # not one control-plane call was made

    backend = make_backend()
    base = versions.echo("v1").model_dump()
    for bad, message in [
        ({"model": "gs://bucket/model"}, "S3"),
        ({"model": "/does/not/exist"}, "does not exist"),
        ({"resources": {"instance_type": "ml.m5.large", "accelerator_count": 1}}, "accelerators"),
        ({"async_inference": {"output_path": "gs://bucket/out"}}, "s3://"),
    ]:
        with pytest.raises(ValidationError, match=message):
            backend.create("sm-invalid", VersionSpec.model_validate({**base, **bad}))
    assert not backend.exists("sm-invalid")


def test_endpoints_endpointkit_did_not_create_are_left_alone(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions
) -> None:
    sm = fake.client("sagemaker")
    sm.create_model(ModelName="foreign-model", PrimaryContainer={"Image": "x"})
    sm.create_endpoint_config(
        EndpointConfigName="foreign-config",
        ProductionVariants=[
            {
                "VariantName": "main",
                "ModelName": "foreign-model",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName="foreign", EndpointConfigName="foreign-config")
    try:
        with pytest.raises(NotFound, match="not created by endpointkit"):
            backend.get("foreign")
        with pytest.raises(NotFound):
            backend.delete("foreign")
        assert "foreign" not in [e.name for e in backend.list_endpoints()]
        models = len(sm.list_models()["Models"])
        with pytest.raises(AlreadyExists, match="not created by endpointkit"):
            backend.create("foreign", versions.echo("v1"))
        assert len(sm.list_models()["Models"]) == models  # nothing was made for it
    finally:
        sm.delete_endpoint(EndpointName="foreign")
        sm.delete_endpoint_config(EndpointConfigName="foreign-config")
        sm.delete_model(ModelName="foreign-model")


def test_wait_stops_on_update_rollback_failed_and_times_out_with_the_last_status(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    endpoint = fake.backend.endpoints[name]
    endpoint.endpoint_status = "UpdateRollbackFailed"
    endpoint.failure_reason = "Rollback failed: the old fleet could not be restored."
    with pytest.raises(DeploymentFailed, match="Rollback failed") as caught:
        backend.wait(name, timeout=60)
    assert caught.value.reason.startswith("Rollback failed")
    assert f"/aws/sagemaker/Endpoints/{name}" in caught.value.log_hint

    endpoint.endpoint_status = "Updating"
    endpoint.failure_reason = None
    with pytest.raises(Timeout) as timed_out:
        backend.wait(name, timeout=0.2)
    assert timed_out.value.last_status == "Updating"
    assert "Updating" in str(timed_out.value)
    endpoint.endpoint_status = "InService"


def test_native_shadow_mirrors_a_sample_and_never_answers(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    ep.deploy(versions.echo("v2"), traffic=0, timeout=60)
    state = ep.set_shadow("v2", 50, timeout=60)
    assert state.shadow == Shadow(version="v2", sample_percent=50)
    described = fake.client("sagemaker").describe_endpoint(EndpointName=name)
    assert [v["VariantName"] for v in described["ShadowProductionVariants"]] == ["v2"]
    config = fake.client("sagemaker").describe_endpoint_config(
        EndpointConfigName=described["EndpointConfigName"]
    )
    assert [v["VariantName"] for v in config["ProductionVariants"]] == ["v1"]
    before = fake.shadow_requests[name]
    assert {ep.predict([[1.0]]).version for _ in range(40)} == {"v1"}
    assert 0 < fake.shadow_requests[name] - before < 40
    with pytest.raises(ValidationError, match="shadow"):
        ep.deploy(versions.echo("v3"))
    cleared = ep.set_shadow(None, timeout=60)
    assert cleared.shadow is None
    assert cleared.version_names == ["v1", "v2"]
    assert cleared.traffic.serving() == {"v1": 100}


def test_autoscaling_is_registered_with_application_auto_scaling_and_removed(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    spec = VersionSpec.model_validate(
        {
            **versions.echo("v1").model_dump(),
            "resources": {"instance_type": "ml.c5.xlarge", "min_replicas": 2, "max_replicas": 6},
            "autoscaling": {"target_invocations_per_replica": 100},
        }
    )
    ep = Endpoint.create(name, spec, backend=backend, timeout=60)
    assert ep.status().version("v1").replicas == 2  # type: ignore[union-attr]
    scaling = fake.client("application-autoscaling")
    resource = f"endpoint/{name}/variant/v1"
    targets = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource]
    )
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets["ScalableTargets"]] == [(2, 6)]
    policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)
    config = policies["ScalingPolicies"][0]["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 100.0
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )
    v2 = VersionSpec.model_validate({**spec.model_dump(), "name": "v2"})
    ep.deploy(v2, traffic=0, timeout=60)
    ep.status()  # settles the deploy: v2's scaling target is registered once it is live
    v2_resource = f"endpoint/{name}/variant/v2"
    assert scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[v2_resource]
    )["ScalableTargets"]
    ep.undeploy("v2", timeout=60)  # deregistered before the variant goes
    assert not scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[v2_resource]
    )["ScalableTargets"]
    ep.delete()
    backend.wait_deleted(name, timeout=60)
    targets = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource]
    )
    assert targets["ScalableTargets"] == []


def test_apply_scales_a_live_variant_in_place(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    v1 = versions.echo("v1")
    apply(EndpointSpec(name=name, backend="sagemaker", versions=[v1]), backend, timeout=60)
    sm = fake.client("sagemaker")
    config_before = sm.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    autoscaled = v1.with_scaling(
        Scaling.model_validate(
            {"min_replicas": 2, "max_replicas": 6, "autoscaling": {"target_cpu_utilization": 70}}
        )
    )
    spec = EndpointSpec(name=name, backend="sagemaker", versions=[autoscaled])
    the_plan = plan(spec, backend)
    assert [a.kind for a in the_plan.actions] == ["scale"], the_plan.diff()
    apply(the_plan, backend, timeout=60)
    desc = sm.describe_endpoint(EndpointName=name)
    assert desc["EndpointConfigName"] == config_before  # in place: no new config, no new fleet
    assert desc["ProductionVariants"][0]["DesiredInstanceCount"] == 2
    resource = f"endpoint/{name}/variant/v1"
    scaling = fake.client("application-autoscaling")
    targets = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource]
    )
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets["ScalableTargets"]] == [(2, 6)]
    policy = scaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)
    config = policy["ScalingPolicies"][0]["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 70.0
    assert not plan(spec, backend), plan(spec, backend).diff()
    assert backend.history(name)[-1].kind == "scaled"

    # Back to one fixed instance: autoscaling goes first, then the count.
    fixed = EndpointSpec(name=name, backend="sagemaker", versions=[v1])
    assert [a.kind for a in plan(fixed, backend).actions] == ["scale"]
    apply(fixed, backend, timeout=60)
    targets = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource]
    )
    assert targets["ScalableTargets"] == []
    desc = sm.describe_endpoint(EndpointName=name)
    assert desc["ProductionVariants"][0]["DesiredInstanceCount"] == 1
    assert not plan(fixed, backend)
    assert Endpoint(name, backend).predict([[1.0]]).version == "v1"


def _registration(fake: FakeSageMaker, name: str, version: str) -> dict[str, Any]:
    """A variant's scalable target and policies, as Application Auto Scaling holds them."""
    scaling = fake.client("application-autoscaling")
    resource = f"endpoint/{name}/variant/{version}"
    targets = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource]
    )["ScalableTargets"]
    policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)
    return {
        "range": [(t["MinCapacity"], t["MaxCapacity"]) for t in targets],
        "policies": {
            p["PolicyName"]: p["TargetTrackingScalingPolicyConfiguration"]
            for p in policies["ScalingPolicies"]
            if p["ResourceId"] == resource
        },
    }


def test_a_failed_scale_puts_autoscaling_back_and_says_so(
    fake: FakeSageMaker,
    backend: SageMakerBackend,
    make_backend: Callable[..., SageMakerBackend],
    versions: Versions,
    name: str,
) -> None:
    autoscaled = Scaling.model_validate(
        {"min_replicas": 2, "max_replicas": 6, "autoscaling": {"target_invocations_per_replica": 9}}
    )
    Endpoint.create(name, versions.echo("v1").with_scaling(autoscaled), backend=backend, timeout=60)
    before = _registration(fake, name, "v1")
    assert before["range"] == [(2, 6)]
    assert before["policies"]
    bigger = autoscaled.model_copy(update={"min_replicas": 3, "max_replicas": 8})
    sm = fake.client("sagemaker")

    # SageMaker refuses the new count: autoscaling, removed first, is put back.
    for code, error in [
        ("ResourceLimitExceeded", QuotaExceeded),
        ("ValidationException", ValidationError),
    ]:
        fake.inject("UpdateEndpointWeightsAndCapacities", code)
        with pytest.raises(error, match="its autoscaling was put back") as caught:
            backend.scale(name, "v1", bigger)
        assert "'v1' keeps 2-6 replicas" in str(caught.value)
        assert _registration(fake, name, "v1") == before
        assert (
            sm.describe_endpoint(EndpointName=name)["ProductionVariants"][0]["DesiredInstanceCount"]
            == 2
        )
        assert backend.live_scaling(backend.get(name))["v1"] == autoscaled

    # Putting it back fails too: the error and the history say so, and a plan sees the gap.
    fake.inject("UpdateEndpointWeightsAndCapacities", "ResourceLimitExceeded")
    fake.inject("RegisterScalableTarget", "AccessDeniedException")
    with pytest.raises(QuotaExceeded, match="could not be put back") as failed:
        backend.scale(name, "v1", bigger)
    assert "'v1' now has 2 fixed instances and no autoscaling" in str(failed.value)
    assert _registration(fake, name, "v1") == {"range": [], "policies": {}}
    last = backend.history(name)[-1]
    assert last.kind == "failed"
    assert "autoscaling" in last.message
    spec = EndpointSpec(
        name=name, backend="sagemaker", versions=[versions.echo("v1").with_scaling(autoscaled)]
    )
    assert [a.kind for a in plan(spec, backend).actions] == ["scale"]
    apply(spec, backend, timeout=60)
    assert _registration(fake, name, "v1") == before

    # The update went through but its answer was lost: nothing is put back, the scale settles.
    once = make_backend(retry_attempts=1)
    lost = fake.inject(
        "UpdateEndpointWeightsAndCapacities", "ServiceUnavailable", status=503, after=True
    )
    once.scale(name, "v1", bigger)
    assert lost.fired == 1
    once.wait(name, timeout=60)
    assert _registration(fake, name, "v1")["range"] == [(3, 8)]
    assert backend.live_scaling(backend.get(name))["v1"] == bigger


def test_cpu_and_invocation_targets_are_two_policies_and_plans_settle(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    both = Scaling.model_validate(
        {
            "min_replicas": 1,
            "max_replicas": 4,
            "autoscaling": {"target_invocations_per_replica": 50, "target_cpu_utilization": 70},
        }
    )
    spec = EndpointSpec(
        name=name, backend="sagemaker", versions=[versions.echo("v1").with_scaling(both)]
    )
    apply(spec, backend, timeout=60)

    def by_metric() -> dict[str, dict[str, Any]]:
        policies = _registration(fake, name, "v1")["policies"]
        assert len(policies) == 2, policies
        found: dict[str, dict[str, Any]] = {}
        for config in policies.values():
            if "PredefinedMetricSpecification" in config:
                found["invocations"] = config
            else:
                found["cpu"] = config
        return found

    policies = by_metric()
    assert policies["invocations"]["TargetValue"] == 50.0
    assert policies["invocations"]["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert policies["cpu"]["TargetValue"] == 70.0
    assert policies["cpu"]["CustomizedMetricSpecification"] == {
        "MetricName": "CPUUtilization",
        "Namespace": "/aws/sagemaker/Endpoints",
        "Dimensions": [
            {"Name": "EndpointName", "Value": name},
            {"Name": "VariantName", "Value": "v1"},
        ],
        "Statistic": "Average",
        "Unit": "Percent",
    }
    assert not plan(spec, backend), plan(spec, backend).diff()
    calls = dict(fake.calls)
    apply(spec, backend, timeout=60)  # a second apply is a no-op
    for action in ("UpdateEndpoint", "UpdateEndpointWeightsAndCapacities", "PutScalingPolicy"):
        assert fake.calls[action] == calls.get(action, 0), action

    # One target changes in place; both policies stay, one of them updated.
    cpu_60 = both.model_copy(
        update={"autoscaling": both.autoscaling.model_copy(update={"target_cpu_utilization": 60})}  # type: ignore[union-attr]
    )
    changed = EndpointSpec(
        name=name, backend="sagemaker", versions=[versions.echo("v1").with_scaling(cpu_60)]
    )
    assert [a.kind for a in plan(changed, backend).actions] == ["scale"]
    apply(changed, backend, timeout=60)
    assert not plan(changed, backend), plan(changed, backend).diff()
    policies = by_metric()
    assert (policies["invocations"]["TargetValue"], policies["cpu"]["TargetValue"]) == (50, 60)


def test_plans_without_autoscaling_read_permission_warn_and_plan_no_scale_steps(
    fake: FakeSageMaker,
    backend: SageMakerBackend,
    versions: Versions,
    name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = EndpointSpec(name=name, backend="sagemaker", versions=[versions.echo("v1")])
    apply(spec, backend, timeout=60)
    two = Scaling(min_replicas=2, max_replicas=2)
    scaled = EndpointSpec(
        name=name, backend="sagemaker", versions=[versions.echo("v1").with_scaling(two)]
    )
    denied = fake.inject("DescribeScalableTargets", "AccessDeniedException", times=None)
    try:
        with caplog.at_level(logging.WARNING, logger="endpointkit.sagemaker"):
            assert not plan(spec, backend)
            # The change cannot be seen, so no scale step is guessed (it could undo autoscaling).
            assert not plan(scaled, backend)
        warnings = [r for r in caplog.records if "application-autoscaling:Describe" in r.message]
        assert len(warnings) == 2, caplog.text  # one a plan
        assert all(r.levelno == logging.WARNING for r in warnings)
        with pytest.raises(PermissionDenied):  # asking to scale still says what is missing
            backend.scale(name, "v1", two)
    finally:
        denied.times = 0
    desc = fake.client("sagemaker").describe_endpoint(EndpointName=name)
    assert desc["ProductionVariants"][0]["DesiredInstanceCount"] == 1
    assert [a.kind for a in plan(scaled, backend).actions] == ["scale"]


def test_serverless_versions_use_serverless_config(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    spec = VersionSpec.model_validate(
        {
            **versions.echo("v1").model_dump(),
            "serverless": {"memory_mb": 2048, "max_concurrency": 10},
        }
    )
    ep = Endpoint.create(name, spec, backend=backend, timeout=60)
    config_name = fake.client("sagemaker").describe_endpoint(EndpointName=name)[
        "EndpointConfigName"
    ]
    variant = fake.client("sagemaker").describe_endpoint_config(EndpointConfigName=config_name)[
        "ProductionVariants"
    ][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 10}
    assert "InstanceType" not in variant
    assert ep.status().version("v1").replicas is None  # type: ignore[union-attr]
    assert ep.predict([[1.0]]).predictions == ["v1"]
    with pytest.raises(ValidationError, match="serverless"):
        ep.deploy(versions.echo("v2"))  # SageMaker cannot mix serverless and instances


def test_async_inference_writes_the_answer_to_s3(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    fake.client("s3").create_bucket(Bucket="async-out")
    spec = VersionSpec.model_validate(
        {
            **versions.echo("v1").model_dump(),
            "async_inference": {"output_path": "s3://async-out/results"},
        }
    )
    ep = Endpoint.create(name, spec, backend=backend, timeout=60)
    handle = ep.invoke_async(b'{"instances": [[1.0]]}')
    assert handle.output_location.startswith("s3://async-out/results/")
    assert handle.result(timeout=30).body == b'{"predictions":["v1"]}'


def test_deployment_config_is_refused_on_variant_set_changes_before_any_call(
    fake: FakeSageMaker,
    backend: SageMakerBackend,
    make_backend: Callable[..., SageMakerBackend],
    versions: Versions,
    name: str,
) -> None:
    """Deployment guardrails need the new config to keep the old variant names
    (dg/deployment-guardrails-exclusions.html); a deploy adds a variant, an undeploy removes
    one and a shadow change moves one, so none of them may carry a DeploymentConfig."""
    canary = {"mode": "canary", "step_percent": 10, "wait_s": 300, "alarms": ["errors-5xx"]}
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    mutations = sum(n for a, n in fake.calls.items() if not a.startswith(("Describe", "List")))
    with pytest.raises(ValidationError, match="same variant names"):
        backend.deploy(name, versions.echo("v2"), 10, deployment_config=canary)
    after = sum(n for a, n in fake.calls.items() if not a.startswith(("Describe", "List")))
    assert after == mutations  # refused before any call
    with pytest.raises(ValidationError, match="same variant names"):
        make_backend(deployment_config=canary)
    assert ep.status().version_names == ["v1"]

    # The fake refuses it as SageMaker does, straight through boto3.
    from botocore.exceptions import ClientError

    sm = fake.client("sagemaker")
    live = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    )["ProductionVariants"][0]
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-renamed",
        ProductionVariants=[{**live, "VariantName": "renamed"}],
    )
    try:
        with pytest.raises(ClientError, match="same variant names"):
            sm.update_endpoint(
                EndpointName=name,
                EndpointConfigName=f"{name}-renamed",
                DeploymentConfig={
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": {
                            "Type": "LINEAR",
                            "WaitIntervalInSeconds": 60,
                            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 20},
                        }
                    }
                },
            )
    finally:
        sm.delete_endpoint_config(EndpointConfigName=f"{name}-renamed")


def test_rollout_watches_cloudwatch_alarms_and_rolls_back_when_one_fires(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    from endpointkit.errors import RolledBack
    from endpointkit.spec import Canary, Gates

    cloudwatch = fake.client("cloudwatch")
    alarm = f"{name}-5xx"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    checks = 0

    def fire_on_second_check(state: object) -> bool:
        nonlocal checks
        checks += 1
        if checks == 2:  # what CloudWatch does when the canary starts failing
            cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")
        return True

    gates = Gates(alarms=[alarm], check_interval_s=0.2)
    with pytest.raises(RolledBack, match=f"alarm {alarm} went into ALARM"):
        ep.rollout(
            versions.echo("v2"),
            Canary(percent=20, bake_s=2, gates=gates),
            check=fire_on_second_check,
            timeout=60,
        )
    state = ep.status()
    assert state.traffic.serving() == {"v1": 100}
    assert state.version_names == ["v1"]
    with pytest.raises(NotFound, match="does not exist"):
        ep.rollout(versions.echo("v2"), Canary(gates=Gates(alarms=["no-such-alarm"])))


def test_settings_come_from_the_aws_environment(
    fake: FakeSageMaker, monkeypatch: pytest.MonkeyPatch, versions: Versions
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", fake.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", fake.runtime_url)
    monkeypatch.setenv("ENDPOINTKIT_SAGEMAKER_ROLE_ARN", f"arn:aws:iam::{ACCOUNT}:role/r")
    backend = SageMakerBackend(image="img:1")
    try:
        assert backend.region == "us-east-1"
        assert isinstance(backend.list_endpoints(), list)
        with pytest.raises(NotFound):
            backend.invoke(
                InvokeRequest("sm-never-created", b"{}")
            )  # answered by the runtime stand-in
    finally:
        backend.close()


def test_import_endpointkit_does_not_import_boto3() -> None:
    code = (
        "import sys, endpointkit, endpointkit.adapters.sagemaker; "
        "from endpointkit.adapters.registry import get_backend_class; "
        "get_backend_class('sagemaker'); "
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_history_writes_are_conditional_so_concurrent_events_are_kept(
    fake: FakeSageMaker, make_backend: Callable[..., SageMakerBackend]
) -> None:
    ours, theirs = make_backend(), make_backend()
    attempts: list[int] = []

    def record(doc: object) -> None:
        attempts.append(1)
        if len(attempts) == 1:  # another process writes between our read and our write
            theirs._history.update("sm-race", lambda d: d.append("traffic", message="theirs"))
        doc.append("traffic", message="ours")  # type: ignore[attr-defined]

    ours._history.update("sm-race", record)
    document = ours._history.read("sm-race")
    assert document is not None
    assert [e.message for e in document.events] == ["theirs", "ours"]
    assert len(attempts) == 2  # the lost race was detected (If-Match) and the write redone
    fake.client("s3").delete_object(
        Bucket=f"sagemaker-us-east-1-{ACCOUNT}", Key="endpointkit/sm-race/history.json"
    )
