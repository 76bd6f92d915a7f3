"""SageMaker's documented rules, enforced before any call, and what a refused call leaves
behind (issue 15)."""

from __future__ import annotations

import pytest

from endpointkit import Endpoint, VersionSpec
from endpointkit.adapters.sagemaker import SageMakerBackend
from endpointkit.errors import NotFound, QuotaExceeded, ValidationError
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
