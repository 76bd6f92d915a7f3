"""SageMaker's documented rules, enforced before any call, and what a refused call leaves
behind (issue 15)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from endpointkit import Endpoint, VersionSpec
from endpointkit.adapters.sagemaker import SageMakerBackend, SettingIgnoredWarning
from endpointkit.errors import NotFound, QuotaExceeded, ValidationError
from endpointkit.spec import Scaling
from tests.conformance.suite import Versions
from tests.fakes.sagemaker import FakeSageMaker
from tests.sagemaker.conftest import leftovers

pytestmark = pytest.mark.slow

NOTHING = {"endpoints": [], "configs": [], "models": [], "artifacts": []}


def test_a_refused_create_endpoint_leaves_nothing_and_delete_removes_leftovers(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    fake.inject("CreateEndpoint", "ResourceLimitExceeded")
    with pytest.raises(QuotaExceeded):
        Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    assert leftovers(fake, name) == NOTHING  # the model, config and model.tar.gz are undone

    # The undo itself is refused: the error says what is left, and delete() removes it.
    fake.inject("CreateEndpoint", "ResourceLimitExceeded")
    denied = fake.inject("DeleteModel", "AccessDeniedException", times=None)
    try:
        with pytest.raises(QuotaExceeded, match="delete"):
            Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    finally:
        denied.times = 0
    assert leftovers(fake, name)["models"]
    backend.delete(name)
    assert leftovers(fake, name) == NOTHING
    with pytest.raises(NotFound):
        backend.delete(name)  # nothing left: a plain NotFound again


def _mutations(fake: FakeSageMaker) -> int:
    return sum(n for action, n in fake.calls.items() if not action.startswith(("Describe", "List")))


def test_serverless_endpoints_take_one_variant_and_no_shadow(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    serverless = {"serverless": {"memory_mb": 2048, "max_concurrency": 5}}
    v1 = VersionSpec.model_validate({**versions.echo("v1").model_dump(), **serverless})
    v2 = VersionSpec.model_validate({**versions.echo("v2").model_dump(), **serverless})
    ep = Endpoint.create(name, v1, backend=backend, timeout=60)
    before = _mutations(fake)
    with pytest.raises(ValidationError, match="one production variant"):
        ep.deploy(v2, traffic=0)
    assert _mutations(fake) == before  # refused before any call
    assert ep.status().version_names == ["v1"]


def test_shadows_are_refused_on_asynchronous_endpoints(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    queued = {"async_inference": {"output_path": "s3://async-out/results"}}
    v1 = VersionSpec.model_validate({**versions.echo("v1").model_dump(), **queued})
    v2 = VersionSpec.model_validate({**versions.echo("v2").model_dump(), **queued})
    ep = Endpoint.create(name, v1, backend=backend, timeout=60)
    ep.deploy(v2, traffic=0, timeout=60)
    before = _mutations(fake)
    with pytest.raises(ValidationError, match="asynchronous"):
        ep.set_shadow("v2", 20)
    assert _mutations(fake) == before
    assert ep.status().shadow is None


def test_the_fake_refuses_what_sagemaker_refuses(fake: FakeSageMaker) -> None:
    """The strict fake (issue 15 item 13): each documented rule, straight through boto3."""
    from botocore.exceptions import ClientError

    sm = fake.client("sagemaker")
    sm.create_model(ModelName="strict-model", PrimaryContainer={"Image": "x"})
    serverless = {"MemorySizeInMB": 1024, "MaxConcurrency": 1}
    instance = {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    cases = {
        "single production variant": {
            "ProductionVariants": [
                {"VariantName": "a", "ModelName": "strict-model", "ServerlessConfig": serverless},
                {"VariantName": "b", "ModelName": "strict-model", "ServerlessConfig": serverless},
            ]
        },
        "asynchronous": {
            "ProductionVariants": [{"VariantName": "a", "ModelName": "strict-model", **instance}],
            "ShadowProductionVariants": [
                {"VariantName": "b", "ModelName": "strict-model", **instance}
            ],
            "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "s3://out/x"}},
        },
    }
    try:
        for message, request in cases.items():
            with pytest.raises(ClientError, match=message) as caught:
                sm.create_endpoint_config(EndpointConfigName="strict-config", **request)
            assert caught.value.response["Error"]["Code"] == "ValidationException"
    finally:
        sm.delete_model(ModelName="strict-model")


def _capture(fake: FakeSageMaker, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The endpoint's DataCaptureConfig as DescribeEndpoint and its live config report it."""
    sm = fake.client("sagemaker")
    desc = sm.describe_endpoint(EndpointName=name)
    config = sm.describe_endpoint_config(EndpointConfigName=desc["EndpointConfigName"])
    return desc.get("DataCaptureConfig", {}), config.get("DataCaptureConfig", {})


def test_data_capture_settings_apply_to_every_change_not_only_create(
    fake: FakeSageMaker,
    make_backend: Callable[..., SageMakerBackend],
    versions: Versions,
    name: str,
) -> None:
    plain = make_backend()
    ep = Endpoint.create(name, versions.echo("v1"), backend=plain, timeout=60)
    assert _capture(fake, name) == ({}, {})

    capturing = make_backend(data_capture=True, data_capture_percent=30)
    ep = Endpoint(name, capturing)
    ep.deploy(
        versions.echo("v2").with_scaling(Scaling(min_replicas=2, max_replicas=2)),
        traffic=25,
        timeout=60,
    )
    live, config = _capture(fake, name)
    assert (live["EnableCapture"], live["CurrentSamplingPercentage"]) == (True, 30)
    assert config["InitialSamplingPercentage"] == 30
    state = ep.status()  # the weights and instance counts survived the full update
    assert state.traffic.serving() == {"v1": 75, "v2": 25}
    assert state.version("v2").replicas == 2  # type: ignore[union-attr]

    ep = Endpoint(name, plain)  # capture off again, with the next change
    ep.undeploy("v1", timeout=60)
    live, config = _capture(fake, name)
    assert not live.get("EnableCapture")
    assert not config
    assert ep.status().traffic.serving() == {"v2": 100}


def test_max_replicas_without_autoscaling_warns_naming_the_field_and_backend(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    ranged = versions.echo("v1").with_scaling(Scaling(min_replicas=1, max_replicas=3))
    with pytest.warns(SettingIgnoredWarning, match=r"max_replicas=3 .*sagemaker") as caught:
        ep = Endpoint.create(name, ranged, backend=backend, timeout=60)
    assert caught[0].filename == __file__  # points at the caller's line
    assert ep.status().version("v1").replicas == 1  # type: ignore[union-attr]
    with pytest.warns(SettingIgnoredWarning, match="max_replicas"):
        backend.scale(name, "v1", Scaling(min_replicas=2, max_replicas=4))
    backend.wait(name, timeout=60)
