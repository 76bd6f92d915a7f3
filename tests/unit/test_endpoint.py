"""The Endpoint handle and its async twin."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from endpointkit import AsyncEndpoint, Endpoint, VersionSpec
from endpointkit.adapters.mock import MockBackend
from endpointkit.errors import (
    AlreadyExists,
    Conflict,
    NotFound,
    Unsupported,
    ValidationError,
)
from endpointkit.spec import Status


def answer(name: str) -> Any:
    return lambda instances: [name] * len(instances)


@pytest.fixture
def mock() -> MockBackend:
    backend = MockBackend(transition_polls=2)
    for name in ("v1", "v2", "v3"):
        backend.register(name, answer(name))
    return backend


@pytest.fixture
def ep(mock: MockBackend) -> Endpoint:
    return Endpoint.create("churn", VersionSpec(name="v1"), backend=mock)


def test_create_waits_until_in_service(ep: Endpoint) -> None:
    assert ep.status().status is Status.IN_SERVICE
    with pytest.raises(AlreadyExists, match="already exists on mock"):
        Endpoint.create("churn", VersionSpec(name="v1"), backend=ep.backend)


def test_deploy_canary_promote_rollback(ep: Endpoint) -> None:
    assert ep.deploy(VersionSpec(name="v2"), traffic=10).traffic.root == {"v1": 90, "v2": 10}
    assert ep.promote("v2").traffic.serving() == {"v2": 100}
    assert {ep.predict([[1]]).version for _ in range(20)} == {"v2"}
    assert ep.rollback().traffic.serving() == {"v1": 90, "v2": 10}


def test_rollback_skips_versions_that_are_gone(ep: Endpoint) -> None:
    ep.deploy(VersionSpec(name="v2"), traffic=50)
    ep.deploy(VersionSpec(name="v3"), traffic=20)  # v1 40, v2 40, v3 20
    ep.promote("v3")
    ep.undeploy("v1")
    assert ep.rollback().traffic.serving() == {"v2": 67, "v3": 33}


def test_rollback_without_history_is_an_error(ep: Endpoint) -> None:
    with pytest.raises(ValidationError, match="no earlier traffic split"):
        ep.rollback()


def test_redeploying_the_same_version_is_a_no_op_and_changed_content_conflicts(
    ep: Endpoint,
) -> None:
    before = len(ep.history())
    ep.deploy(VersionSpec(name="v1"), traffic=100)
    assert len(ep.history()) == before
    with pytest.raises(Conflict, match="immutable: give the changed version a new name"):
        ep.deploy(VersionSpec(name="v1", env={"X": "1"}))


def test_undeploy_rules(ep: Endpoint) -> None:
    with pytest.raises(Conflict, match="last version"):
        ep.undeploy("v1")
    ep.deploy(VersionSpec(name="v2"))
    with pytest.raises(ValidationError, match="serves all traffic"):
        ep.undeploy("v1")
    with pytest.raises(NotFound, match="'v9' is not deployed"):
        ep.undeploy("v9")
    ep.set_shadow("v2")
    with pytest.raises(Conflict, match="shadow"):
        ep.undeploy("v2")


def test_traffic_validation(ep: Endpoint) -> None:
    ep.deploy(VersionSpec(name="v2"))
    with pytest.raises(ValidationError, match="sums to 110"):
        ep.set_traffic({"v1": 100, "v2": 10})
    with pytest.raises(NotFound, match="'v7' is not deployed"):
        ep.set_traffic({"v7": 100})
    assert ep.status().traffic.serving() == {"v1": 100}


def test_unsupported_feature_names_the_backend(ep: Endpoint) -> None:
    version = VersionSpec(name="v2", async_inference={"output_path": "s3://b/out"})
    with pytest.raises(Unsupported, match="mock backend does not support async inference"):
        ep.deploy(version)


def test_predict_checks_the_prediction_count(mock: MockBackend) -> None:
    mock.add_endpoint("short", {"v1": lambda xs: xs[:1]})
    from endpointkit.errors import ModelError

    with pytest.raises(ModelError, match="1 predictions for 2 instances"):
        Endpoint("short", mock).predict([[1], [2]])


def test_html_repr_shows_versions_and_traffic(ep: Endpoint) -> None:
    ep.deploy(VersionSpec(name="v2"), traffic=25)
    ep.set_shadow(None)
    html = ep._repr_html_()
    assert "<table>" in html
    assert "v1</td><td>75%" in html
    assert "v2</td><td>25%" in html


def test_async_twin_has_the_same_public_api() -> None:
    def public(cls: type) -> set[str]:
        return {n for n, _ in inspect.getmembers(cls) if not n.startswith("_")}

    assert public(AsyncEndpoint) == public(Endpoint)
    for name in public(Endpoint) - {"create"}:
        sync_params = list(inspect.signature(getattr(Endpoint, name)).parameters)
        async_params = list(inspect.signature(getattr(AsyncEndpoint, name)).parameters)
        assert sync_params == async_params, name


def test_async_endpoint_round_trip(mock: MockBackend) -> None:
    async def scenario() -> list[str | None]:
        ep = await AsyncEndpoint.create("aio", VersionSpec(name="v1"), backend=mock)
        await ep.deploy(VersionSpec(name="v2"), traffic=50)
        results = await asyncio.gather(*(ep.predict([[1]]) for _ in range(20)))
        await ep.delete()
        return [r.version for r in results]

    assert set(asyncio.run(scenario())) == {"v1", "v2"}


def test_scale_keeps_what_is_not_given(ep: Endpoint, mock: MockBackend) -> None:
    state = ep.scale("v1", 2, 6, autoscaling={"target_cpu_utilization": 60})
    live = state.version("v1")
    assert live is not None
    assert live.scaling is not None
    assert live.scaling.describe() == "2-6 replicas, autoscaling on cpu 60%"
    assert ep.scale("v1", 3).version("v1").scaling.describe() == (  # type: ignore[union-attr]
        "3-6 replicas, autoscaling on cpu 60%"
    )
    assert ep.scale("v1", autoscaling=False).version("v1").scaling.describe() == (  # type: ignore[union-attr]
        "3-6 replicas"
    )
    events = len(ep.history())
    ep.scale("v1", 3, 6)  # what it already has: no change, no event
    assert len(ep.history()) == events
    with pytest.raises(ValidationError, match="invalid scaling"):
        ep.scale("v1", 8, 2)


def test_async_scale(mock: MockBackend) -> None:
    async def scenario() -> int | None:
        ep = await AsyncEndpoint.create("aio", VersionSpec(name="v1"), backend=mock)
        state = await ep.scale("v1", 4)
        return state.version("v1").replicas  # type: ignore[union-attr]

    assert asyncio.run(scenario()) == 4
