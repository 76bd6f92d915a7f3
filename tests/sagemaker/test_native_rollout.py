"""Native rollouts on SageMaker (deployment guardrails), boto3 against the moto-backed fake.

`Endpoint.rollout(..., native=True)` replaces the endpoint's only version in place: the new
config keeps the variant's name and runs the new version's model, sent with a DeploymentConfig
the fake checks and bakes (tests/fakes/sagemaker.py). Everything SageMaker would refuse, or
that endpointkit cannot roll out natively, is refused before any call.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from endpointkit import Endpoint
from endpointkit.adapters.sagemaker import SageMakerBackend
from endpointkit.adapters.sagemaker._native import plan_native
from endpointkit.errors import RolledBack, ValidationError
from endpointkit.spec import (
    AllAtOnce,
    AsyncInference,
    Canary,
    Gates,
    Linear,
    Resources,
    Serverless,
    VersionSpec,
)
from tests.conformance.suite import Versions
from tests.fakes.sagemaker import FakeSageMaker


def _alarm(fake: FakeSageMaker, name: str) -> str:
    fake.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    return name


def _mutations(fake: FakeSageMaker) -> int:
    return sum(n for a, n in fake.calls.items() if not a.startswith(("Describe", "List")))


def test_native_canary_replaces_the_version_in_place_keeping_the_variant(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    alarm = _alarm(fake, f"{name}-5xx")
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    events = len(ep.history())
    steps: list[str] = []
    result = ep.rollout(
        versions.echo("v2"),
        Canary(percent=20, bake_s=1, gates=Gates(alarms=[alarm])),
        native=True,
        timeout=120,
        on_step=steps.append,
    )
    assert result.steps == [20, 100]
    state = ep.status()
    assert state.version_names == ["v2"]
    assert state.traffic.serving() == {"v2": 100}
    assert state.versions[0].details["variant"] == "v1"  # the variant kept its name
    assert state.versions[0].spec_hash == versions.echo("v2").spec_hash
    sm = fake.client("sagemaker")
    desc = sm.describe_endpoint(EndpointName=name)
    assert [v["VariantName"] for v in desc["ProductionVariants"]] == ["v1"]
    assert desc["LastDeploymentConfig"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 1,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20},
            },
            "TerminationWaitInSeconds": 0,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]},
    }
    # The new model answers, reported (and pinned) by its version, not the variant's name.
    assert ep.predict([[1.0]]).version == "v2"
    pinned = ep.predict([[1.0]], version="v2")
    assert (pinned.version, pinned.predictions) == ("v2", ["v2"])
    kinds = [(e.kind, e.version) for e in ep.history()[events:]]
    assert kinds == [("rollout", "v2"), ("deployed", "v2")]
    assert any("natively" in s for s in steps)

    # The variant named v1 serves v2, so a new version may not take that name...
    with pytest.raises(ValidationError, match="variant named 'v1'"):
        ep.deploy(versions.echo("v1"), traffic=10)
    # ...and every other change maps versions to their variants.
    ep.deploy(versions.echo("v3"), traffic=50, timeout=60)
    assert ep.status().traffic.serving() == {"v2": 50, "v3": 50}
    assert ep.predict([[1.0]], version="v2").predictions == ["v2"]
    ep.set_traffic({"v2": 20, "v3": 80}, timeout=60)
    assert ep.status().traffic.serving() == {"v2": 20, "v3": 80}
    ep.undeploy("v2", timeout=60)
    state = ep.status()
    assert state.version_names == ["v3"]
    assert [
        v["VariantName"] for v in sm.describe_endpoint(EndpointName=name)["ProductionVariants"]
    ] == ["v3"]


def test_an_alarm_during_the_bake_rolls_the_native_rollout_back(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    cloudwatch = fake.client("cloudwatch")
    alarm = _alarm(fake, f"{name}-latency")
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)

    def fire(step: str) -> None:
        if "natively" in step:  # UpdateEndpoint was sent: the canary starts failing
            cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")

    try:
        with pytest.raises(RolledBack, match=f"rolled back by sagemaker: .*{alarm}") as caught:
            ep.rollout(
                versions.echo("v2"),
                Linear(step_percent=50, interval_s=1, gates=Gates(alarms=[alarm])),
                native=True,
                timeout=120,
                on_step=fire,
            )
    finally:
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test")
    assert alarm in caught.value.reason
    assert caught.value.version == "v2"
    state = ep.status()
    assert state.version_names == ["v1"]
    assert state.traffic.serving() == {"v1": 100}
    assert ep.predict([[1.0]]).predictions == ["v1"]
    last = ep.history()[-1]
    assert (last.kind, last.version) == ("failed", "v2")
    assert "rolled back by SageMaker" in last.message
    assert alarm in last.message


def test_native_rollouts_sagemaker_cannot_run_are_refused_before_any_call(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    before = _mutations(fake)
    refused: list[tuple[Any, str]] = [
        # LinearStepSize: 10-50% (API_TrafficRoutingConfig; botocore does not check it).
        (Linear(step_percent=5, interval_s=1), "LinearStepSize"),
        ({"type": "linear", "step_percent": 60}, "step_percent"),
        (Canary(percent=60, bake_s=1), "CanarySize"),
        (AllAtOnce(bake_s=4000), "wait_s must be 0-3600"),
        (Linear(step_percent=10, interval_s=3600), "MaximumExecutionTimeoutInSeconds"),
        (AllAtOnce(bake_s=1.5), "whole seconds"),
        (Canary(bake_s=1, gates=Gates(probe=[[1.0]], max_error_rate=0.0)), "CloudWatch alarms"),
    ]
    for strategy, message in refused:
        with pytest.raises(ValidationError, match=message):
            ep.rollout(versions.echo("v2"), strategy, native=True)
    with pytest.raises(ValidationError, match="custom check"):
        ep.rollout(versions.echo("v2"), AllAtOnce(), native=True, check=lambda _: True)
    assert _mutations(fake) == before  # not one model, config or update
    ep.deploy(versions.echo("v2"), traffic=10, timeout=60)
    updates = fake.calls["UpdateEndpoint"]
    with pytest.raises(ValidationError, match=r"serves 2 versions \(v1, v2\)"):
        ep.rollout(versions.echo("v3"), AllAtOnce(), native=True)
    assert fake.calls["UpdateEndpoint"] == updates
    assert ep.status().version_names == ["v1", "v2"]


def _config(**variant: Any) -> dict[str, Any]:
    production = {
        "VariantName": "v1",
        "ModelName": "ep-v1-0123456789ab",
        "InstanceType": "ml.m5.large",
        **variant,
    }
    return {"ProductionVariants": [production]}


@pytest.mark.parametrize(
    ("config", "version", "strategy", "message"),
    [
        (
            {**_config(), "ShadowProductionVariants": [{"VariantName": "v0"}]},
            VersionSpec(name="v2"),
            AllAtOnce(),
            "shadow version",
        ),
        (
            _config(ServerlessConfig={"MemorySizeInMB": 2048, "MaxConcurrency": 5}),
            VersionSpec(name="v2"),
            AllAtOnce(),
            "serverless",
        ),
        (
            _config(),
            VersionSpec(name="v2", serverless=Serverless()),
            AllAtOnce(),
            "serverless",
        ),
        (
            {**_config(), "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "s3://b"}}},
            VersionSpec(name="v2"),
            AllAtOnce(),
            "asynchronous",
        ),
        (
            _config(),
            VersionSpec(name="v2", async_inference=AsyncInference(output_path="s3://b/out")),
            AllAtOnce(),
            "asynchronous",
        ),
        (
            _config(InstanceType="ml.inf1.xlarge"),
            VersionSpec(name="v2"),
            Canary(percent=10, bake_s=60),
            "Inf1",
        ),
        (
            _config(),
            VersionSpec(name="v2", resources=Resources(instance_type="ml.inf1.xlarge")),
            Linear(step_percent=20, interval_s=60),
            "Inf1",
        ),
    ],
)
def test_endpoints_guardrails_exclude_are_refused(
    config: dict[str, Any], version: VersionSpec, strategy: Any, message: str
) -> None:
    """The endpoint shapes deployment guardrails exclude (or endpointkit cannot roll out in
    place) are refused from the live config alone: no call is needed to decide."""
    versions = {"v1": "v1", "v0": "v0"}
    with pytest.raises(ValidationError, match=message) as caught:
        plan_native("ep", version, strategy, config, versions)
    assert "nothing was changed" in caught.value.message


def test_inf1_may_roll_out_all_at_once() -> None:
    plan = plan_native(
        "ep",
        VersionSpec(name="v2"),
        AllAtOnce(bake_s=60),
        _config(InstanceType="ml.inf1.xlarge"),
        {"v1": "v1"},
    )
    assert (plan.variant_name, plan.replaces, plan.config.mode) == ("v1", "v1", "all_at_once")


def test_the_fake_refuses_guardrails_outside_the_documented_ranges(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    """Straight through boto3: the limits SageMaker documents and botocore does not check."""
    Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    sm = fake.client("sagemaker")
    live = sm.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    variant = sm.describe_endpoint_config(EndpointConfigName=live)["ProductionVariants"][0]
    sm.create_endpoint_config(EndpointConfigName=f"{name}-same", ProductionVariants=[variant])

    def routing(**fields: Any) -> dict[str, Any]:
        return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": fields}}

    bad = [
        (
            routing(
                Type="LINEAR",
                WaitIntervalInSeconds=60,
                LinearStepSize={"Type": "CAPACITY_PERCENT", "Value": 5},
            ),
            "LinearStepSize must be 10-50%",
        ),
        (routing(Type="ALL_AT_ONCE", WaitIntervalInSeconds=4000), "less than or equal to 3600"),
        (
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "ALL_AT_ONCE",
                        "WaitIntervalInSeconds": 0,
                    },
                    "MaximumExecutionTimeoutInSeconds": 30000,
                }
            },
            "less than or equal to 28800",
        ),
    ]
    try:
        for deployment, message in bad:
            with pytest.raises(ClientError, match=message):
                sm.update_endpoint(
                    EndpointName=name,
                    EndpointConfigName=f"{name}-same",
                    DeploymentConfig=deployment,
                )
    finally:
        sm.delete_endpoint_config(EndpointConfigName=f"{name}-same")
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"


def test_an_autoscaled_variant_keeps_its_instance_type_and_its_autoscaling(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    """dg/endpoint-scaling-update.html: an update may change an autoscaled variant's model,
    not its instance type."""
    scaled = {
        "resources": {"instance_type": "ml.c5.xlarge", "min_replicas": 1, "max_replicas": 3},
        "autoscaling": {"target_invocations_per_replica": 100},
    }

    def spec(version: str, **fields: Any) -> VersionSpec:
        return VersionSpec.model_validate({**versions.echo(version).model_dump(), **fields})

    ep = Endpoint.create(name, spec("v1", **scaled), backend=backend, timeout=60)
    before = _mutations(fake)
    with pytest.raises(ValidationError, match=r"from ml.c5.xlarge to ml.m5.large"):
        ep.rollout(spec("v2"), AllAtOnce(), native=True)
    assert _mutations(fake) == before
    ep.rollout(spec("v2", **scaled), AllAtOnce(bake_s=0), native=True, timeout=120)
    state = ep.status()
    assert state.version_names == ["v2"]
    live = backend.live_scaling(state)["v2"]  # read from the variant's name, v1
    assert (live.min_replicas, live.max_replicas) == (1, 3)
    assert live.autoscaling is not None
