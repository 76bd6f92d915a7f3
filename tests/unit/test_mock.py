"""The mock backend: routing, target version, shadow, recorded calls, fault injection."""

from __future__ import annotations

from typing import Any

import pytest

from endpointkit import Endpoint, VersionSpec
from endpointkit.adapters.mock import MockBackend
from endpointkit.errors import (
    ModelError,
    NotReady,
    Throttled,
    Timeout,
    Unavailable,
    UnknownBackend,
)
from endpointkit.state import Status
from endpointkit.testing import mock_endpoints


def answer(name: str) -> Any:
    return lambda instances: [name] * len(instances)


def two_versions(seed: int = 0, **settings: Any) -> MockBackend:
    mock = MockBackend(seed=seed, **settings)
    mock.add_endpoint("churn", {"v1": answer("v1"), "v2": answer("v2")}, {"v1": 80, "v2": 20})
    return mock


def route(mock: MockBackend, n: int) -> list[str | None]:
    ep = Endpoint("churn", mock)
    return [ep.predict([[1.0]]).version for _ in range(n)]


def test_routing_is_seeded_and_follows_the_split() -> None:
    first, second = route(two_versions(seed=7), 500), route(two_versions(seed=7), 500)
    assert first == second
    assert route(two_versions(seed=8), 500) != first
    share = first.count("v2") / len(first)
    assert 0.15 < share < 0.25  # 20% nominal; exact for this seed, checked loosely


def test_target_version_bypasses_the_split() -> None:
    mock = two_versions()
    ep = Endpoint("churn", mock)
    assert {ep.predict([[1]], version="v2").version for _ in range(20)} == {"v2"}
    assert all(c.target_version == "v2" for c in mock.calls_to("churn"))


def test_calls_are_recorded_with_headers_and_bodies() -> None:
    mock = two_versions()
    Endpoint("churn", mock).invoke(
        b'{"instances": [[1, 2]]}', accept="application/json", custom_attributes="trace=1"
    )
    (call,) = mock.calls_to("churn")
    assert call.json() == {"instances": [[1, 2]]}
    assert call.custom_attributes == "trace=1"
    assert call.accept == "application/json"
    assert call.status == 200


def test_plain_function_and_predictor_object_and_parameters() -> None:
    class Doubler:
        def predict(self, instances: list[float], parameters: dict[str, Any] | None) -> list[float]:
            factor = (parameters or {}).get("factor", 2)
            return [x * factor for x in instances]

    mock = MockBackend()
    mock.add_endpoint("calc", {"v1": Doubler()})
    result = Endpoint("calc", mock).predict([1, 2], {"factor": 3})
    assert result.predictions == [3, 6]
    assert result.version == "v1"


def test_shadow_gets_copies_and_never_answers() -> None:
    mock = MockBackend(seed=1)
    mock.add_endpoint("churn", {"v1": answer("v1"), "v3": answer("v3")}, {"v1": 100})
    ep = Endpoint("churn", mock)
    ep.set_shadow("v3", sample_percent=50)
    served = [ep.predict([[1]]).version for _ in range(200)]
    assert set(served) == {"v1"}
    mirrored = mock.calls_to("churn", shadow=True)
    assert 60 < len(mirrored) < 140
    assert {c.version for c in mirrored} == {"v3"}


def test_shadow_failures_do_not_reach_the_caller() -> None:
    def broken(instances: list[Any]) -> list[Any]:
        raise RuntimeError("shadow bug")

    mock = MockBackend()
    mock.add_endpoint("churn", {"v1": answer("v1"), "v3": broken}, {"v1": 100})
    ep = Endpoint("churn", mock)
    ep.set_shadow("v3")
    assert ep.predict([[1]]).predictions == ["v1"]
    (shadow_call,) = mock.calls_to("churn", shadow=True)
    assert shadow_call.status == 500


def test_injected_throttling_is_retried_then_succeeds() -> None:
    mock = two_versions()
    fault = mock.inject("throttle", times=2)
    sleeps: list[float] = []
    ep = Endpoint("churn", mock, sleep=sleeps.append)
    assert ep.predict([[1]]).predictions
    assert fault.fired == 2
    assert len(sleeps) == 2


def test_throttling_beyond_the_retry_budget_raises_throttled() -> None:
    mock = two_versions()
    mock.inject("throttle", times=None)
    with pytest.raises(Throttled) as caught:
        Endpoint("churn", mock, sleep=lambda _: None).predict([[1]])
    assert caught.value.endpoint == "churn"
    assert caught.value.backend == "mock"


@pytest.mark.parametrize(("kind", "error"), [("unavailable", Unavailable), ("not_ready", NotReady)])
def test_transient_faults(kind: str, error: type[Exception]) -> None:
    mock = two_versions()
    mock.inject(kind, times=None)  # type: ignore[arg-type]
    with pytest.raises(error):
        Endpoint("churn", mock, sleep=lambda _: None).predict([[1]])


def test_model_error_keeps_status_and_body_and_is_not_retried() -> None:
    mock = two_versions()
    mock.inject("model_error", version="v2", status=503, body=b'{"error": "oom"}', times=None)
    ep = Endpoint("churn", mock, sleep=lambda _: pytest.fail("ModelError must not be retried"))
    with pytest.raises(ModelError) as caught:
        ep.predict([[1]], version="v2")
    assert caught.value.status == 503
    assert caught.value.body_excerpt == '{"error": "oom"}'
    assert ep.predict([[1]], version="v1").predictions == ["v1"]


def test_model_exceptions_map_like_the_server() -> None:
    def picky(instances: list[Any]) -> list[Any]:
        raise ValueError("expected 4 features, got 1")

    mock = MockBackend()
    mock.add_endpoint("strict", {"v1": picky})
    with pytest.raises(ModelError, match="expected 4 features") as caught:
        Endpoint("strict", mock).predict([[1]])
    assert caught.value.status == 422


def test_latency_and_timeouts() -> None:
    slept: list[float] = []
    mock = two_versions(sleep=slept.append)
    mock.inject("latency", seconds=0.5, times=None)
    ep = Endpoint("churn", mock)
    ep.predict([[1]])
    assert slept == [0.5]
    with pytest.raises(Timeout):
        ep.invoke(b'{"instances": [1]}', timeout=0.1)
    assert slept[-1] == 0.1


def test_status_transitions_report_updating_until_polled() -> None:
    mock = two_versions(transition_polls=3)
    mock.set_traffic("churn", {"v1": 50, "v2": 50})
    assert mock.get("churn").status is Status.UPDATING
    assert Endpoint("churn", mock).wait(timeout=5).status is Status.IN_SERVICE


def test_failed_deploy_keeps_old_versions_serving() -> None:
    mock = two_versions()
    mock.inject("deploy", version="v3", reason="image pull failed")
    from endpointkit.errors import DeploymentFailed

    ep = Endpoint("churn", mock)
    with pytest.raises(DeploymentFailed, match="image pull failed"):
        ep.deploy(VersionSpec(name="v3"), traffic=10)
    state = ep.status()
    assert state.version_names == ["v1", "v2"]
    assert state.traffic.root == {"v1": 80, "v2": 20}
    assert ep.predict([[1]]).version in {"v1", "v2"}
    assert [e.kind for e in ep.history()][-1] == "failed"


def test_mock_state_is_per_instance() -> None:
    first, second = two_versions(), MockBackend()
    assert first.exists("churn")
    assert not second.exists("churn")


def test_mock_endpoints_routes_every_backend_name_to_the_mock() -> None:
    with mock_endpoints() as mock:
        mock.add_endpoint("churn", {"v1": answer("v1")})
        # Application code written for SageMaker runs against the mock unchanged.
        assert Endpoint("churn", "sagemaker", region="eu-west-1").predict([[1]]).predictions == [
            "v1"
        ]
    # Outside the block names resolve normally again.
    with pytest.raises(UnknownBackend, match="no backend named 'nonexistent-backend'"):
        Endpoint("churn", "nonexistent-backend")


def test_pytest_fixture(endpointkit_mock: MockBackend) -> None:
    endpointkit_mock.add_endpoint("fraud", {"v1": answer("v1")})
    assert Endpoint("fraud", "vertex").predict([[1]]).version == "v1"
