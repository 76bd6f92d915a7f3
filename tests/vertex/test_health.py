"""A version's health check on Vertex AI: what the Model's container spec carries, and a
container that is not healthy within its startup budget failing the deploy as Vertex does.

The fake runs real serving processes; `time_scale=0.02` makes Vertex's seconds fiftyfold
shorter (a 60 s budget is 1.2 s), so the tests take seconds.
"""

from __future__ import annotations

import time

import pytest

from endpointkit.adapters.vertex import VertexBackend
from endpointkit.endpoint import Endpoint
from endpointkit.errors import DeploymentFailed
from endpointkit.spec import HealthCheck
from tests.conformance.suite import Versions
from tests.fakes.vertex import VertexFake
from tests.fakes.vertex_support import make_backend

pytestmark = pytest.mark.slow  # real serving processes


@pytest.fixture(autouse=True)
def fast_clock(fake: VertexFake) -> None:
    fake.time_scale = 0.02


def container_spec(fake: VertexFake, endpoint: str, version_id: str) -> dict[str, object]:
    spec = fake.models[endpoint][version_id]["containerSpec"]
    assert isinstance(spec, dict)
    return spec


def test_health_check_reaches_the_container_spec_over_backend_settings(
    fake: VertexFake, versions: Versions
) -> None:
    backend = make_backend(
        fake,
        startup_probe={"period_seconds": 5, "failure_threshold": 120},
        health_probe={"period_seconds": 10, "timeout_seconds": 2},
        deployment_timeout_s=3600,
    )
    try:
        # 300 s x 0.02 = 6 s for a model that loads in 0.5 s.
        health = HealthCheck(startup_timeout_s=300, period_s=15, failure_threshold=4)
        ep = Endpoint.create("probes", versions.slow("v1", 0.5, health), backend=backend)
        spec = container_spec(fake, "probes", "1")
        assert spec["startupProbe"] == {
            "httpGet": {"path": "/health", "port": 8080},
            "periodSeconds": 10,
            "failureThreshold": 30,  # 30 x 10 s covers 300 s
        }
        assert spec["healthProbe"] == {
            "httpGet": {"path": "/health", "port": 8080},
            "periodSeconds": 15,
            "timeoutSeconds": 2,  # the setting, where the version says nothing
            "failureThreshold": 4,
        }
        assert spec["deploymentTimeout"] == "3600s"  # never shortened below the setting
        # A version without a health check gets the backend settings as before.
        ep.deploy(versions.echo("v2"), traffic=0, timeout=60)
        plain = container_spec(fake, "probes", "2")
        assert plain["startupProbe"]["failureThreshold"] == 120  # type: ignore[index]
        assert plain["deploymentTimeout"] == "3600s"
        backend.delete("probes")
        backend.wait_deleted("probes", timeout=60)
    finally:
        backend.close()


def test_container_not_ready_within_its_budget_fails_the_deploy(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    ep = Endpoint.create("late", versions.echo("v1"), backend=backend)
    # 60 s x 0.02 = 1.2 s for a model that takes 30 s to load.
    slow = versions.slow("v2", 30.0, HealthCheck(startup_timeout_s=60))
    started = time.monotonic()
    with pytest.raises(DeploymentFailed) as caught:
        ep.deploy(slow, traffic=10, timeout=60)
    assert time.monotonic() - started < 20  # the 1.2 s budget ended it, not the 30 s load
    error = caught.value
    assert "Model server never became ready" in error.reason
    assert "removed" in error.reason
    assert error.log_hint.startswith("https://console.cloud.google.com/logs/")
    assert error.version == "v2"
    assert list(fake.models["late"]) == ["1"]  # the uploaded Model version is gone again
    assert len(fake.live_processes()) == 1  # v1's; v2's container was stopped
    state = ep.status()
    assert state.version_names == ["v1"]
    assert state.traffic.serving() == {"v1": 100}
    assert ep.predict([[1.0]]).version == "v1"
    assert ep.history()[-1].kind == "failed"
    backend.delete("late")
    backend.wait_deleted("late", timeout=60)
