"""Asynchronous inference's SNS notifications and scaling to zero on the backlog, through boto3
against the moto-backed fake: SageMaker (fake) -> moto SNS -> moto SQS -> endpointkit, and
Application Auto Scaling + CloudWatch read back as AWS stores them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from endpointkit import Endpoint, VersionSpec
from endpointkit.adapters.sagemaker import SageMakerBackend
from endpointkit.errors import ModelError, QuotaExceeded
from endpointkit.planner import plan
from endpointkit.spec import EndpointSpec, Scaling
from tests.conformance.suite import Versions
from tests.fakes.sagemaker import FakeSageMaker

pytestmark = pytest.mark.slow

BODY = b'{"instances": [[1.0]]}'
#: The keys of the notification in docs.aws.amazon.com/sagemaker/latest/dg/
#: async-inference-check-predictions.html.
DOCUMENTED = {
    "awsRegion",
    "eventTime",
    "receivedTime",
    "invocationStatus",
    "requestParameters",
    "responseParameters",
    "inferenceId",
    "eventVersion",
    "eventSource",
    "eventName",
}


def _asynchronous(version: VersionSpec, **section: Any) -> VersionSpec:
    return VersionSpec.model_validate({**version.model_dump(), "async_inference": section})


def _queue(fake: FakeSageMaker, name: str, *topics: str) -> str:
    """An SQS queue subscribed to `topics` (SNS envelope, as a plain subscription gets it)."""
    sqs, sns = fake.client("sqs"), fake.client("sns")
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    for topic in topics:
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return url


def test_sns_topics_go_into_the_config_and_notifications_answer_result(
    fake: FakeSageMaker,
    make_backend: Callable[..., SageMakerBackend],
    versions: Versions,
    name: str,
) -> None:
    fake.client("s3").create_bucket(Bucket="async-notes")
    sns = fake.client("sns")
    done = sns.create_topic(Name=f"{name}-done")["TopicArn"]
    failed = sns.create_topic(Name=f"{name}-failed")["TopicArn"]
    inbox = _queue(fake, f"{name}-inbox", done, failed)
    watcher = _queue(fake, f"{name}-watcher", done)  # read here with boto3, as AWS posts it
    backend = make_backend(notification_queue_url=inbox)
    spec = _asynchronous(
        versions.echo("v1"),
        output_path="s3://async-notes/out",
        success_topic=done,
        error_topic=failed,
    )
    ep = Endpoint.create(name, spec, backend=backend, timeout=60)
    sm = fake.client("sagemaker")
    config = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    )
    assert config["AsyncInferenceConfig"]["OutputConfig"]["NotificationConfig"] == {
        "SuccessTopic": done,
        "ErrorTopic": failed,
    }

    job = ep.invoke_async(BODY, inference_id="note-1")
    assert job.result(timeout=30).json() == {"predictions": ["v1"]}
    # The notification was read (and taken off the queue) by endpointkit.
    sqs = fake.client("sqs")
    assert "Messages" not in sqs.receive_message(QueueUrl=inbox, WaitTimeSeconds=0)
    envelope = json.loads(
        sqs.receive_message(QueueUrl=watcher, WaitTimeSeconds=1)["Messages"][0]["Body"]
    )
    note = json.loads(envelope["Message"])
    assert set(note) == DOCUMENTED
    assert note["invocationStatus"] == "Completed"
    assert note["inferenceId"] == "note-1"
    assert note["requestParameters"]["endpointName"] == name
    assert note["responseParameters"]["outputLocation"] == job.output_location


def test_a_failure_without_a_failure_path_is_told_by_the_error_topic(
    fake: FakeSageMaker,
    make_backend: Callable[..., SageMakerBackend],
    versions: Versions,
    name: str,
) -> None:
    """With no S3FailurePath nothing in S3 says a request failed; the error notification
    does, with SageMaker's failure reason."""
    fake.client("s3").create_bucket(Bucket="async-notes")
    failed = fake.client("sns").create_topic(Name=f"{name}-failed")["TopicArn"]
    backend = make_backend(notification_queue_url=_queue(fake, f"{name}-inbox", failed))
    spec = _asynchronous(
        versions.rejecting("v1"), output_path="s3://async-notes/out", error_topic=failed
    )
    ep = Endpoint.create(name, spec, backend=backend, timeout=60)
    job = ep.invoke_async(BODY, inference_id="note-fail-1")
    with pytest.raises(ModelError, match="ClientError: Received") as caught:
        job.result(timeout=30)
    assert "rejects every input" in str(caught.value)


def test_topic_arns_are_checked_before_any_call(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions
) -> None:
    before = sum(fake.calls.values())
    with pytest.raises(ValueError, match="success_topic 'my-topic' is not an SNS topic ARN"):
        _asynchronous(versions.echo("v1"), output_path="s3://b/o", success_topic="my-topic")
    assert sum(fake.calls.values()) == before


def _registered(fake: FakeSageMaker, name: str) -> dict[str, Any]:
    """What Application Auto Scaling and CloudWatch hold for endpoint `name`."""
    aas, cw = fake.client("application-autoscaling"), fake.client("cloudwatch")
    targets = [
        t
        for t in aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        if t["ResourceId"].startswith(f"endpoint/{name}/")
    ]
    policies = [
        p
        for p in aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        if p["ResourceId"].startswith(f"endpoint/{name}/")
    ]
    alarms = [
        a
        for a in cw.describe_alarms()["MetricAlarms"]
        if {"Name": "EndpointName", "Value": name} in a["Dimensions"]
    ]
    return {"targets": targets, "policies": policies, "alarms": alarms}


def _check_scale_to_zero(found: dict[str, Any], name: str, variant: str, high: int) -> None:
    resource = f"endpoint/{name}/variant/{variant}"
    (target,) = [t for t in found["targets"] if t["ResourceId"] == resource]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, high)
    policies = {p["PolicyType"]: p for p in found["policies"] if p["ResourceId"] == resource}
    tracking = policies["TargetTrackingScaling"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 2.0
    assert tracking["CustomizedMetricSpecification"] == {
        "MetricName": "ApproximateBacklogSizePerInstance",
        "Namespace": "AWS/SageMaker",
        "Dimensions": [{"Name": "EndpointName", "Value": name}],
        "Statistic": "Average",
    }
    step = policies["StepScaling"]
    assert step["StepScalingPolicyConfiguration"]["AdjustmentType"] == "ChangeInCapacity"
    assert step["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}
    ]
    (alarm,) = [a for a in found["alarms"] if step["PolicyARN"] in a["AlarmActions"]]
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity"
    assert alarm["Namespace"] == "AWS/SageMaker"
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == 1.0


def zero(version: VersionSpec) -> VersionSpec:
    """`version` as an asynchronous version that scales 0-3 on a backlog of 2 per instance."""
    scaled = version.model_copy(
        update={"resources": version.resources.model_copy(update={"max_replicas": 3})}
    )
    return _asynchronous(
        scaled,
        output_path="s3://async-zero/out",
        scale_to_zero=True,
        target_backlog_per_replica=2.0,
    )


def test_scale_to_zero_registers_backlog_scaling_and_removes_it_with_the_variant(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    fake.client("s3").create_bucket(Bucket="async-zero")
    ep = Endpoint.create(name, zero(versions.echo("v1")), backend=backend, timeout=60)
    found = _registered(fake, name)
    _check_scale_to_zero(found, name, "v1", 3)
    assert (len(found["policies"]), len(found["alarms"])) == (2, 1)
    # The range 0-3 is the backlog policy's, not a scale step plans should undo.
    assert backend.live_scaling(ep.status()) == {}
    spec = EndpointSpec(name=name, versions=[zero(versions.echo("v1"))])
    assert not plan(spec, backend=backend).actions

    # A second version gets its own; taking v1 off removes v1's target, policies and alarm.
    ep.deploy(zero(versions.echo("v2")), traffic=0, timeout=60)
    ep.set_traffic({"v2": 100}, timeout=60)
    ep.undeploy("v1", timeout=60)
    backend.get(name)  # settles the change (registers v2's)
    found = _registered(fake, name)
    _check_scale_to_zero(found, name, "v2", 3)
    assert {t["ResourceId"] for t in found["targets"]} == {f"endpoint/{name}/variant/v2"}
    assert (len(found["policies"]), len(found["alarms"])) == (2, 1)

    backend.delete(name)
    backend.wait_deleted(name, timeout=60)
    assert _registered(fake, name) == {"targets": [], "policies": [], "alarms": []}


def test_a_refused_scale_puts_the_backlog_scaling_and_its_alarm_back(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    """A scale deregisters first (the alarm goes too); when SageMaker refuses the new count,
    the policies come back under new ARNs and the alarm is put back pointing at them."""
    fake.client("s3").create_bucket(Bucket="async-zero")
    Endpoint.create(name, zero(versions.echo("v1")), backend=backend, timeout=60)
    fake.inject("UpdateEndpointWeightsAndCapacities", "ResourceLimitExceeded")
    with pytest.raises(QuotaExceeded, match="its autoscaling was put back"):
        backend.scale(name, "v1", Scaling(min_replicas=2, max_replicas=2))
    found = _registered(fake, name)
    _check_scale_to_zero(found, name, "v1", 3)
    assert (len(found["policies"]), len(found["alarms"])) == (2, 1)
