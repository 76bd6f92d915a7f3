"""Client-side progressive delivery on the mock backend."""

from __future__ import annotations

from typing import Any

import pytest

from endpointkit import Endpoint, VersionSpec
from endpointkit.adapters.base import Capability
from endpointkit.adapters.mock import MockBackend
from endpointkit.errors import Conflict, NotFound, RolledBack, Unsupported, ValidationError
from endpointkit.rollout import steps_of
from endpointkit.spec import AllAtOnce, BlueGreen, Canary, Gates, Linear


def answer(name: str) -> Any:
    return lambda instances: [name] * len(instances)


class FakeClock:
    """Time that advances only when the controller sleeps (so bakes take no real time)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def mock() -> MockBackend:
    backend = MockBackend(seed=5)
    for name in ("v1", "v2", "v3"):
        backend.register(name, answer(name))
    backend.add_endpoint("churn", {"v1": answer("v1")})
    return backend


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def traffic_history(mock: MockBackend) -> list[dict[str, int]]:
    return [
        {k: v for k, v in e.traffic_after.items() if v}
        for e in mock.history("churn")
        if e.kind == "traffic" and e.traffic_after is not None
    ]


def test_steps() -> None:
    assert steps_of(Canary(percent=20, bake_s=5)) == [(20, 5), (100, 5)]
    assert [p for p, _ in steps_of(Linear(step_percent=30, interval_s=1))] == [30, 60, 90, 100]
    assert steps_of(AllAtOnce()) == [(100, 0)]
    assert steps_of(BlueGreen(bake_s=7)) == [(100, 7)]


def test_canary_with_passing_gates(mock: MockBackend, clock: FakeClock) -> None:
    ep = Endpoint("churn", mock, sleep=clock.sleep, clock=clock.time)
    gates = Gates(probe=[[1.0]], max_error_rate=0.0, check_interval_s=30)
    result = ep.rollout(VersionSpec(name="v2"), Canary(percent=10, bake_s=60, gates=gates))
    assert result.steps == [10, 100]
    assert result.probes == 10 * 3 * 2  # checks at 0, 30 and 60 s of each bake, two steps
    assert result.probe_errors == 0
    assert traffic_history(mock) == [{"v1": 90, "v2": 10}, {"v2": 100}]
    assert sum(clock.sleeps) == 120


def test_linear_shifts_step_by_step(mock: MockBackend, clock: FakeClock) -> None:
    ep = Endpoint("churn", mock, sleep=clock.sleep, clock=clock.time)
    ep.rollout({"name": "v2"}, {"type": "linear", "step_percent": 25, "interval_s": 10})
    assert [s["v2"] for s in traffic_history(mock)] == [25, 50, 75, 100]
    assert clock.sleeps == [10, 10, 10, 10]


def test_failed_error_rate_gate_rolls_back(mock: MockBackend, clock: FakeClock) -> None:
    mock.inject("model_error", version="v2", status=500, times=None)
    ep = Endpoint("churn", mock, sleep=clock.sleep, clock=clock.time)
    gates = Gates(probe=[[1.0]], max_error_rate=0.1)
    with pytest.raises(RolledBack, match="error rate 100%") as caught:
        ep.rollout(VersionSpec(name="v2"), Canary(percent=20, bake_s=30, gates=gates))
    assert caught.value.version == "v2"
    state = ep.status()
    assert state.traffic.serving() == {"v1": 100}
    assert state.version_names == ["v1"]  # the new version was removed again


def test_custom_check_can_veto(mock: MockBackend, clock: FakeClock) -> None:
    ep = Endpoint("churn", mock, sleep=clock.sleep, clock=clock.time)
    seen: list[dict[str, int]] = []

    def check(state: Any) -> bool:
        seen.append(state.traffic.serving())
        return state.traffic["v2"] < 50  # fine as a canary, not at full traffic

    with pytest.raises(RolledBack, match="custom check returned False"):
        ep.rollout(VersionSpec(name="v2"), Canary(percent=10, bake_s=0), check=check)
    assert seen == [{"v1": 90, "v2": 10}, {"v2": 100}]
    assert ep.status().traffic.serving() == {"v1": 100}


def test_blue_green_undeploys_the_blue_versions(mock: MockBackend, clock: FakeClock) -> None:
    ep = Endpoint("churn", mock, sleep=clock.sleep, clock=clock.time)
    ep.deploy(VersionSpec(name="v2"), traffic=30)
    result = ep.rollout(VersionSpec(name="v3"), BlueGreen(bake_s=5))
    assert result.state is not None
    assert result.state.version_names == ["v3"]
    assert result.state.traffic.serving() == {"v3": 100}


def test_alarm_gates_need_a_platform_with_alarms(mock: MockBackend) -> None:
    class NoAlarms(MockBackend):
        capabilities = MockBackend.capabilities - {Capability.ALARM_GATES}

    plain = NoAlarms()
    plain.add_endpoint("churn", {"v1": answer("v1")})
    ep = Endpoint("churn", plain)
    with pytest.raises(Unsupported, match="cannot watch metric alarms"):
        ep.rollout(VersionSpec(name="v2"), Canary(gates=Gates(alarms=["5xx"])))
    assert ep.status().version_names == ["v1"]


def test_alarm_gates_check_the_alarms_before_changing_anything(mock: MockBackend) -> None:
    ep = Endpoint("churn", mock)
    with pytest.raises(NotFound, match="'5xx' does not exist"):
        ep.rollout(VersionSpec(name="v2"), Canary(gates=Gates(alarms=["5xx"])))
    mock.set_alarm("5xx", firing=True)
    with pytest.raises(Conflict, match="already in ALARM"):
        ep.rollout(VersionSpec(name="v2"), Canary(gates=Gates(alarms=["5xx"])))
    assert ep.status().version_names == ["v1"]
    assert ep.status().traffic.serving() == {"v1": 100}


def test_an_alarm_that_fires_during_the_bake_rolls_back(
    mock: MockBackend, clock: FakeClock
) -> None:
    mock.set_alarm("5xx", firing=False)
    mock.set_alarm("latency", firing=False)

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= 20:
            mock.set_alarm("latency", firing=True)

    ep = Endpoint("churn", mock, sleep=sleep, clock=clock.time)
    gates = Gates(alarms=["5xx", "latency"], check_interval_s=10)
    with pytest.raises(RolledBack, match="alarm latency went into ALARM") as caught:
        ep.rollout(VersionSpec(name="v2"), Canary(percent=10, bake_s=60, gates=gates))
    assert caught.value.reason == "alarm latency went into ALARM"
    state = ep.status()
    assert state.traffic.serving() == {"v1": 100}
    assert state.version_names == ["v1"]
    assert clock.now == 20  # caught at the first check after it fired


def test_strategy_validation() -> None:
    with pytest.raises(ValueError, match="probe requests"):
        Gates(max_error_rate=0.1)
    ep = Endpoint("x", MockBackend())
    with pytest.raises(ValidationError, match="invalid rollout strategy"):
        ep.rollout({"name": "v2"}, {"type": "canary", "percent": 100})
