"""A version's health check on SageMaker: the startup timeouts reach the ProductionVariant, and
a container that is not healthy within them fails the deployment the way SageMaker does.

The fake runs real serving processes; `time_scale=0.02` makes SageMaker's seconds fiftyfold
shorter (its 60 s minimum is 1.2 s), so the tests take seconds.
"""

from __future__ import annotations

import time

import pytest

from endpointkit.adapters.sagemaker import SageMakerBackend
from endpointkit.endpoint import Endpoint
from endpointkit.errors import DeploymentFailed, ValidationError
from endpointkit.spec import HealthCheck, Serverless
from tests.conformance.suite import Versions
from tests.fakes.sagemaker import FakeSageMaker
from tests.sagemaker.conftest import leftovers

pytestmark = pytest.mark.slow

STARTUP_FIELDS = (
    "ContainerStartupHealthCheckTimeoutInSeconds",
    "ModelDataDownloadTimeoutInSeconds",
)


@pytest.fixture(autouse=True)
def fast_clock(fake: FakeSageMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake, "time_scale", 0.02)


def live_variants(fake: FakeSageMaker, name: str) -> dict[str, dict[str, object]]:
    sm = fake.client("sagemaker")
    config = sm.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    described = sm.describe_endpoint_config(EndpointConfigName=config)
    return {v["VariantName"]: v for v in described["ProductionVariants"]}


def test_startup_timeouts_reach_the_variant_and_survive_later_deploys(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    # 300 s x 0.02 = 6 s for a model that loads in 0.5 s.
    health = HealthCheck(startup_timeout_s=300, period_s=5, failure_threshold=3)
    ep = Endpoint.create(name, versions.slow("v1", 0.5, health), backend=backend, timeout=60)
    variant = live_variants(fake, name)["v1"]
    assert {k: variant[k] for k in STARTUP_FIELDS} == dict.fromkeys(STARTUP_FIELDS, 300)
    # SageMaker has no liveness settings: period and threshold are not sent anywhere.
    assert not [k for k in variant if "Period" in k or "Threshold" in k]
    ep.deploy(versions.echo("v2"), traffic=50, timeout=60)
    variants = live_variants(fake, name)
    assert variants["v1"]["ContainerStartupHealthCheckTimeoutInSeconds"] == 300
    assert not set(STARTUP_FIELDS) & set(variants["v2"])
    assert ep.predict([[1.0]], version="v1").version == "v1"


def test_slow_container_fails_the_deploy_and_the_endpoint_keeps_serving(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    # 60 s x 0.02 = 1.2 s for a model that takes 30 s to load.
    slow = versions.slow("v2", 30.0, HealthCheck(startup_timeout_s=60))
    with pytest.raises(DeploymentFailed) as caught:
        ep.deploy(slow, traffic=10, timeout=60)
    error = caught.value
    assert "production variant v2 did not pass the ping health check" in error.reason
    assert f"/aws/sagemaker/Endpoints/{name}" in error.log_hint
    assert "stream v2/" in error.log_hint
    assert error.version == "v2"
    state = ep.status()
    assert state.version_names == ["v1"]
    assert state.traffic.serving() == {"v1": 100}
    assert ep.predict([[1.0]]).version == "v1"
    left = leftovers(fake, name)  # the failed config and model are gone
    assert len(left["configs"]) == 1
    assert [m.split("-")[-2] for m in left["models"]] == ["v1"]
    assert {c.variant for c in fake.running() if c.endpoint == name} == {"v1"}


def test_slow_container_fails_a_create_that_deletes_cleanly(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    slow = versions.slow("v1", 30.0, HealthCheck(startup_timeout_s=60))
    started = time.monotonic()
    with pytest.raises(DeploymentFailed, match="did not pass the ping health check"):
        Endpoint.create(name, slow, backend=backend, timeout=60)
    assert time.monotonic() - started < 20  # the 1.2 s budget ended it, not the 30 s load
    assert backend.get(name).raw_status == "Failed"
    assert not [c for c in fake.running() if c.endpoint == name]
    backend.delete(name)
    backend.wait_deleted(name, timeout=60)
    assert leftovers(fake, name) == {"endpoints": [], "configs": [], "models": [], "artifacts": []}


def test_serverless_budget_is_fixed(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    version = versions.echo("v1").model_copy(
        update={"serverless": Serverless(), "health": HealthCheck(startup_timeout_s=600)}
    )
    before = sum(fake.calls.values())
    with pytest.raises(ValidationError, match="fixed 180 s") as caught:
        Endpoint.create(name, version, backend=backend, timeout=60)
    assert "startup_timeout_s to 180 or less" in (caught.value.hint or "")
    assert sum(fake.calls.values()) == before  # refused before any call
    # The fake, like SageMaker, takes no startup timeouts on a serverless variant.
    sm = fake.client("sagemaker")
    with pytest.raises(sm.exceptions.ClientError, match="cannot be set for serverless"):
        sm.create_endpoint_config(
            EndpointConfigName=f"{name}-serverless",
            ProductionVariants=[
                {
                    "VariantName": "v1",
                    "ModelName": "any",
                    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1},
                    "ContainerStartupHealthCheckTimeoutInSeconds": 120,
                }
            ],
        )
