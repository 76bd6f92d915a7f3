"""Progressive delivery through Endpoint.rollout on every backend.

The rollout controller runs client-side, so each backend runs the same scenarios. Bakes pass on
a fake clock (time moves only when the controller sleeps), so they take no real time; probes
and traffic changes are real.
"""

from __future__ import annotations

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.base import Backend, Capability
from endpointkit.errors import NotFound, RolledBack, Unsupported
from endpointkit.spec import AllAtOnce, BlueGreen, Canary, Gates, Linear
from endpointkit.state import EndpointState
from tests.conformance.scenarios.base import SuiteBase, Versions, lacks, needs


class FakeClock:
    """Time that advances only when the controller sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def traffic_changes(endpoint: Endpoint, since: int) -> list[dict[str, int]]:
    """The serving splits of the endpoint's "traffic" events after the first `since` events."""
    return [
        {k: v for k, v in e.traffic_after.items() if v}
        for e in endpoint.history()[since:]
        if e.kind == "traffic" and e.traffic_after is not None
    ]


class RolloutScenarios(SuiteBase):
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def controlled(self, endpoint: Endpoint, backend: Backend, clock: FakeClock) -> Endpoint:
        """The endpoint, through a handle whose rollouts bake on the fake clock."""
        return Endpoint(endpoint.name, backend, sleep=clock.sleep, clock=clock.time)

    def test_canary_rollout_completes(
        self, controlled: Endpoint, backend: Backend, versions: Versions, clock: FakeClock
    ) -> None:
        per_check, checks = 5, 3  # checks at 0, 10 and 20 s of each 20 s bake
        gates = Gates(
            probe=[[1.0]], max_error_rate=0.0, probes_per_check=per_check, check_interval_s=10
        )
        events = len(controlled.history())
        result = controlled.rollout(
            versions.echo("v2"), Canary(percent=20, bake_s=20, gates=gates), timeout=120
        )
        assert result.steps == [20, 100]
        assert result.probe_errors == 0
        # At 100% every probe reaches v2; at 20% unpinned probes that v1 answers do not count.
        full = per_check * checks
        assert full < result.probes <= 2 * full
        if Capability.TARGET_VERSION in backend.capabilities:
            assert result.probes == 2 * full  # pinned probes all reach the new version
        assert clock.now >= 40  # both steps baked their 20 s
        assert result.state is not None
        assert result.state.traffic.serving() == {"v2": 100}
        assert controlled.status().traffic.serving() == {"v2": 100}
        assert traffic_changes(controlled, events) == [{"v1": 80, "v2": 20}, {"v2": 100}]
        assert set(self.served(controlled, 20)) == {"v2"}

    def test_failed_gate_rolls_back_to_the_previous_split(
        self, controlled: Endpoint, versions: Versions
    ) -> None:
        controlled.deploy(versions.echo("v2"), traffic=30, timeout=120)
        # v3 deploys fine and rejects every request, so the probes' error rate fails the gate.
        # At 50% unpinned probes reach v3 too: missing it 20 times running is a 1e-6 chance.
        gates = Gates(probe=[[1.0]], max_error_rate=0.0, probes_per_check=20)
        with pytest.raises(RolledBack, match="error rate") as caught:
            controlled.rollout(
                versions.rejecting("v3"), Canary(percent=50, bake_s=10, gates=gates), timeout=120
            )
        assert caught.value.version == "v3"
        assert "rolled back at 50%" in str(caught.value)
        state = controlled.status()
        assert state.traffic.serving() == {"v1": 70, "v2": 30}
        assert state.version_names == ["v1", "v2"]  # the new version was removed again
        counts = self.served(controlled, 30)
        assert set(counts) == {"v1", "v2"}

    def test_custom_check_vetoes_full_traffic_and_rolls_back(
        self, controlled: Endpoint, versions: Versions
    ) -> None:
        seen: list[dict[str, int]] = []

        def check(state: EndpointState) -> bool:
            seen.append(state.traffic.serving())
            return state.traffic["v2"] < 50  # fine as a canary, not at full traffic

        events = len(controlled.history())
        with pytest.raises(RolledBack, match="custom check returned False") as caught:
            controlled.rollout(
                versions.echo("v2"), Canary(percent=10, bake_s=0), check=check, timeout=120
            )
        assert caught.value.version == "v2"
        assert seen == [{"v1": 90, "v2": 10}, {"v2": 100}]
        state = controlled.status()
        assert state.traffic.serving() == {"v1": 100}
        assert state.version_names == ["v1"]
        assert traffic_changes(controlled, events) == [
            {"v1": 90, "v2": 10},
            {"v2": 100},
            {"v1": 100},
        ]
        assert set(self.served(controlled, 20)) == {"v1"}

    def test_linear_rollout_steps_show_in_history(
        self, controlled: Endpoint, versions: Versions, clock: FakeClock
    ) -> None:
        events = len(controlled.history())
        result = controlled.rollout(
            versions.echo("v2"), Linear(step_percent=25, interval_s=5), timeout=120
        )
        assert result.steps == [25, 50, 75, 100]
        assert clock.sleeps == [5, 5, 5, 5]  # no gates: each step just bakes
        assert [s.get("v2", 0) for s in traffic_changes(controlled, events)] == [25, 50, 75, 100]
        assert [s.get("v1", 0) for s in traffic_changes(controlled, events)] == [75, 50, 25, 0]
        assert controlled.status().traffic.serving() == {"v2": 100}

    def test_blue_green_rollout_undeploys_the_blue_versions(
        self, controlled: Endpoint, versions: Versions
    ) -> None:
        result = controlled.rollout(versions.echo("v2"), BlueGreen(bake_s=5), timeout=120)
        assert result.steps == [100]
        assert result.state is not None
        assert result.state.version_names == ["v2"]
        assert result.state.traffic.serving() == {"v2": 100}
        assert set(self.served(controlled, 20)) == {"v2"}

    @needs(Capability.ALARM_GATES)
    def test_alarm_gates_check_the_alarms_before_changing_anything(
        self, controlled: Endpoint, versions: Versions
    ) -> None:
        events = len(controlled.history())
        with pytest.raises(NotFound, match="conf-no-such-alarm"):
            controlled.rollout(
                versions.echo("v2"), Canary(gates=Gates(alarms=["conf-no-such-alarm"]))
            )
        assert controlled.status().version_names == ["v1"]
        assert len(controlled.history()) == events

    @lacks(Capability.ALARM_GATES)
    def test_alarm_gates_are_unsupported(
        self, controlled: Endpoint, backend: Backend, versions: Versions
    ) -> None:
        events = len(controlled.history())
        with pytest.raises(Unsupported, match="cannot watch metric alarms") as caught:
            controlled.rollout(versions.echo("v2"), Canary(gates=Gates(alarms=["5xx"])))
        assert caught.value.backend == backend.name
        assert controlled.status().version_names == ["v1"]
        assert len(controlled.history()) == events

    @needs(Capability.NATIVE_ROLLOUT)
    def test_native_rollout_replaces_the_only_version_in_place(
        self, controlled: Endpoint, versions: Versions
    ) -> None:
        events = len(controlled.history())
        result = controlled.rollout(versions.echo("v2"), AllAtOnce(bake_s=1), native=True)
        assert result.steps == [100]
        state = controlled.status()
        assert state.version_names == ["v2"]
        assert state.traffic.serving() == {"v2": 100}
        assert set(self.served(controlled, 20)) == {"v2"}
        kinds = [(e.kind, e.version) for e in controlled.history()[events:]]
        assert kinds == [("rollout", "v2"), ("deployed", "v2")]

    @lacks(Capability.NATIVE_ROLLOUT)
    def test_native_rollout_is_unsupported_and_changes_nothing(
        self, controlled: Endpoint, backend: Backend, versions: Versions
    ) -> None:
        events = len(controlled.history())
        with pytest.raises(Unsupported, match="native rollout") as caught:
            controlled.rollout(versions.echo("v2"), Canary(bake_s=0), native=True)
        assert caught.value.backend == backend.name
        assert controlled.status().version_names == ["v1"]
        assert len(controlled.history()) == events
