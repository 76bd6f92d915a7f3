"""The Endpoint handle and its async twin."""

from __future__ import annotations

import asyncio
import inspect
import io
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
from endpointkit.state import Status


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


def test_unsupported_feature_names_the_backend() -> None:
    like_vertex = MockBackend(like="vertex")
    like_vertex.add_endpoint("churn", {"v1": lambda xs: xs})
    version = VersionSpec(name="v2", async_inference={"output_path": "s3://b/out"})
    with pytest.raises(
        Unsupported, match=r"mock \(like vertex\) backend does not support async inference"
    ):
        Endpoint("churn", like_vertex).deploy(version)


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
        return {n for n, v in inspect.getmembers(cls) if not n.startswith("_") and callable(v)}

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


# -- the twins behave alike (not only look alike) ----------------------------------------------


def _throttled_six_times(mock: MockBackend) -> None:
    mock.add_endpoint("busy", {"v1": answer("v1")})
    mock.inject("throttle", endpoint="busy", times=6)


def test_create_keeps_invoke_attempts_and_sleep(mock: MockBackend) -> None:
    """`AsyncEndpoint.create` once dropped `invoke_attempts` (gave up after 3 of 7)."""
    naps: list[float] = []
    _throttled_six_times(mock)
    sync = Endpoint("busy", mock, invoke_attempts=7, sleep=naps.append)
    assert sync.predict([[1]]).predictions == ["v1"]
    assert len(naps) == 6

    async def scenario() -> list[Any]:
        ep = await AsyncEndpoint.create(
            "busy-2", VersionSpec(name="v1"), backend=mock, invoke_attempts=7, sleep=naps.append
        )
        mock.inject("throttle", endpoint="busy-2", times=6)
        return (await ep.predict([[1]])).predictions

    naps.clear()
    assert asyncio.run(scenario()) == ["v1"]
    assert len(naps) == 6  # the injected sleep, not a real one


@pytest.mark.parametrize("attempts", [1, 3])
def test_both_twins_give_up_after_the_same_attempts(mock: MockBackend, attempts: int) -> None:
    from endpointkit.errors import Throttled

    _throttled_six_times(mock)
    naps: list[float] = []
    with pytest.raises(Throttled):
        Endpoint("busy", mock, invoke_attempts=attempts, sleep=naps.append).invoke(b"{}")
    sync_calls = len(mock.calls_to("busy"))
    sync_naps = len(naps)
    mock.clear_faults()
    mock.inject("throttle", endpoint="busy", times=6)
    mock.calls.clear()
    naps.clear()

    async def scenario() -> None:
        ep = AsyncEndpoint("busy", mock, invoke_attempts=attempts, sleep=naps.append)
        await ep.invoke(b"{}")

    with pytest.raises(Throttled):
        asyncio.run(scenario())
    assert (len(mock.calls_to("busy")), len(naps)) == (sync_calls, sync_naps)
    assert sync_naps == attempts - 1


def test_async_twin_passes_settings_and_clock_through() -> None:
    def clock() -> float:
        return 42.0

    ep = AsyncEndpoint("x", "mock", invoke_attempts=5, clock=clock, seed=3)
    assert ep._sync._invoke_attempts == 5
    assert ep._sync._clock is clock
    assert ep.backend._random.random() == MockBackend(seed=3)._random.random()


def test_settings_with_a_backend_instance_are_refused(mock: MockBackend) -> None:
    with pytest.raises(ValidationError, match=r"region.*already configured"):
        Endpoint("x", mock, region="eu-west-1")
    with pytest.raises(ValidationError, match="already configured"):
        AsyncEndpoint("x", mock, region="eu-west-1")


def test_invoke_takes_bytes_or_text_and_refuses_anything_else_clearly(ep: Endpoint) -> None:
    """`invoke([...])` (instances where raw bytes belong) failed deep inside the HTTP client
    with "sequence item 1: expected a bytes-like object, str found" on the local backend;
    it is refused before any call, naming `predict` for instances."""
    body = '{"instances": [1, 2]}'
    assert ep.invoke(body).json() == ep.invoke(body.encode()).json()
    assert ep.invoke(bytearray(body.encode())).json() == ep.invoke(body.encode()).json()
    assert ep.invoke(io.BytesIO(body.encode())).json() == ep.invoke(body.encode()).json()
    for wrong in ([1, 2], {"instances": [1]}, 3):
        with pytest.raises(ValidationError, match=r"raw bytes.*predict\(instances\)"):
            ep.invoke(wrong)  # type: ignore[arg-type]
