"""plan/apply: ordering that never drops traffic, idempotency, immutability."""

from __future__ import annotations

from typing import Any

import pytest

from endpointkit import EndpointSpec, apply, plan
from endpointkit.adapters.base import Capability
from endpointkit.adapters.mock import MockBackend
from endpointkit.errors import ValidationError
from endpointkit.planner import destroy, plan_destroy
from endpointkit.spec import Scaling
from endpointkit.state import Status


def answer(name: str) -> Any:
    return lambda instances: [name] * len(instances)


@pytest.fixture
def mock() -> MockBackend:
    backend = MockBackend(transition_polls=2)
    for name in ("v1", "v2", "v3"):
        backend.register(name, answer(name))
    return backend


def make_spec(traffic: dict[str, int], shadow: str | None = None, **extra: Any) -> EndpointSpec:
    versions = [{"name": n, "env": {"MODEL": n}} for n in extra.pop("versions", traffic)]
    data: dict[str, Any] = {
        "name": "churn",
        "backend": "mock",
        "versions": versions,
        "traffic": traffic,
    }
    if shadow:
        data["shadow"] = {"version": shadow, "sample_percent": 10}
    return EndpointSpec.from_dict({**data, **extra})


def kinds(the_plan: Any) -> list[tuple[str, str | None]]:
    return [(a.kind, a.version_name) for a in the_plan.actions]


def test_new_endpoint_creates_with_the_biggest_share_then_deploys_then_shifts(
    mock: MockBackend,
) -> None:
    spec = make_spec({"v1": 10, "v2": 90})
    the_plan = plan(spec, mock)
    assert kinds(the_plan) == [("create", "v2"), ("deploy", "v1"), ("traffic", None)]
    assert "+ create endpoint churn with v2" in the_plan.diff()
    result = apply(spec, mock)
    assert result.state is not None
    assert result.state.traffic.root == {"v1": 10, "v2": 90}
    assert result.state.status is Status.IN_SERVICE


def test_second_apply_is_a_no_op(mock: MockBackend) -> None:
    spec = make_spec({"v1": 90, "v2": 10}, shadow=None)
    apply(spec, mock)
    events = len(mock.history("churn"))
    again = plan(spec, mock)
    assert not again
    assert "no changes" in again.diff()
    apply(spec, mock)
    assert len(mock.history("churn")) == events


def test_order_deploys_before_shifting_and_shifts_before_undeploying(mock: MockBackend) -> None:
    apply(make_spec({"v1": 100}), mock)
    target = make_spec({"v2": 70, "v3": 30})
    assert kinds(plan(target, mock)) == [
        ("deploy", "v2"),
        ("deploy", "v3"),
        ("traffic", None),
        ("undeploy", "v1"),
    ]
    apply(target, mock)
    state = mock.get("churn")
    assert state.version_names == ["v2", "v3"]
    assert state.traffic.root == {"v2": 70, "v3": 30}
    # No moment without traffic: every recorded split served something.
    for event in mock.history("churn"):
        if event.traffic_after is not None:
            assert sum(event.traffic_after.values()) == 100


def test_scale_ups_run_before_traffic_moves_and_scale_downs_after(mock: MockBackend) -> None:
    def sized(traffic: dict[str, int], replicas: dict[str, int]) -> EndpointSpec:
        spec = make_spec(traffic)
        versions = [
            v.with_scaling(Scaling(min_replicas=replicas[v.name], max_replicas=replicas[v.name]))
            for v in spec.versions
        ]
        return spec.model_copy(update={"versions": versions})

    apply(sized({"v1": 90, "v2": 10}, {"v1": 3, "v2": 1}), mock)
    swap = sized({"v1": 10, "v2": 90}, {"v1": 1, "v2": 3})
    the_plan = plan(swap, mock)
    assert kinds(the_plan) == [("scale", "v2"), ("traffic", None), ("scale", "v1")]
    assert "~ scale v2: 1 replica -> 3 replicas" in the_plan.diff()
    apply(swap, mock)
    state = mock.get("churn")
    assert [v.scaling for v in state.versions] == [
        Scaling(min_replicas=1, max_replicas=1),
        Scaling(min_replicas=3, max_replicas=3),
    ]
    assert not plan(swap, mock)


def test_backend_that_cannot_scale_in_place_refuses_at_plan_time(mock: MockBackend) -> None:
    class FixedSize(MockBackend):
        capabilities = MockBackend.capabilities - {Capability.SCALING}

    fixed = FixedSize()
    fixed.register("v1", answer("v1"))
    apply(make_spec({"v1": 100}), fixed)
    spec = make_spec({"v1": 100})
    bigger = spec.model_copy(
        update={
            "versions": [spec.versions[0].with_scaling(Scaling(min_replicas=2, max_replicas=2))]
        }
    )
    with pytest.raises(ValidationError, match="cannot change a live version's replicas") as error:
        plan(bigger, fixed)
    assert "new name" in (error.value.hint or "")


def test_shadow_is_cleared_before_it_gets_traffic_and_set_after(mock: MockBackend) -> None:
    apply(make_spec({"v1": 100, "v2": 0}, shadow="v2"), mock)
    assert mock.get("churn").shadow is not None
    swap = make_spec({"v1": 0, "v2": 100}, shadow="v1")
    assert [a.kind for a in plan(swap, mock).actions] == ["shadow", "traffic", "shadow"]
    apply(swap, mock)
    state = mock.get("churn")
    assert state.traffic.serving() == {"v2": 100}
    assert state.shadow is not None
    assert state.shadow.version == "v1"
    assert not plan(swap, mock)


def test_changed_version_reusing_a_name_is_refused(mock: MockBackend) -> None:
    apply(make_spec({"v1": 100}), mock)
    changed = EndpointSpec.from_dict(
        {
            "name": "churn",
            "backend": "mock",
            "versions": [{"name": "v1", "env": {"MODEL": "retrained"}}],
        }
    )
    with pytest.raises(ValidationError, match=r"versions\[0\] 'v1' differs") as caught:
        plan(changed, mock)
    assert "give the changed version a new name" in str(caught.value)


def test_failed_endpoint_is_recreated(mock: MockBackend) -> None:
    mock.inject("deploy", version="v1")
    spec = make_spec({"v1": 100})
    mock.create("churn", spec.version("v1"))
    assert mock.get("churn").status is Status.FAILED
    assert kinds(plan(spec, mock)) == [("delete", None), ("create", "v1")]
    apply(spec, mock)
    assert mock.get("churn").status is Status.IN_SERVICE


def test_interrupted_apply_converges_on_the_next_run(mock: MockBackend) -> None:
    apply(make_spec({"v1": 100}), mock)
    target = make_spec({"v2": 50, "v3": 50})
    mock.inject("deploy", version="v3")  # the run dies half-way
    with pytest.raises(Exception, match="injected deployment failure"):
        apply(target, mock)
    assert mock.get("churn").traffic.serving() == {"v1": 100}  # still serving
    assert kinds(plan(target, mock)) == [("deploy", "v3"), ("traffic", None), ("undeploy", "v1")]
    apply(target, mock)
    assert not plan(target, mock)


def test_destroy(mock: MockBackend) -> None:
    apply(make_spec({"v1": 100}), mock)
    assert [a.kind for a in plan_destroy("churn", mock).actions] == ["delete"]
    destroy("churn", mock, timeout=5)
    assert not mock.exists("churn")
    assert not plan_destroy("churn", mock)
    assert not destroy("churn", mock).plan  # idempotent


def test_plan_json_shape(mock: MockBackend) -> None:
    data = plan(make_spec({"v1": 100}), mock).to_dict()
    assert data["changes"] == 1
    assert data["actions"][0]["action"] == "create"
    assert data["actions"][0]["version"] == "v1"


def test_apply_waits_for_a_change_still_running_then_replans() -> None:
    mock = MockBackend(transition_polls=5)
    for name in ("v1", "v2"):
        mock.register(name, answer(name))
    apply(make_spec({"v1": 100}), mock)
    mock.deploy("churn", make_spec({"v1": 50, "v2": 50}).version("v2"), 50)  # left running
    assert mock.get("churn").status is Status.UPDATING
    result = apply(make_spec({"v1": 50, "v2": 50}), mock)
    assert result.state is not None
    assert result.state.traffic.serving() == {"v1": 50, "v2": 50}
    assert not result.plan  # the running change already got there


def test_apply_of_a_plan_builds_the_backend_with_the_specs_settings() -> None:
    """apply(plan) once built the backend without the spec's settings (region, project...),
    so a plan made for one place could be applied to another."""
    from endpointkit.adapters import registry

    built: list[dict[str, Any]] = []

    class Recording(MockBackend):
        """Records the settings it is built with; every build shares one state."""

        name = "recording"

        def __new__(cls, **settings: Any) -> Recording:
            built.append(settings)
            return shared

        def __init__(self, **settings: Any) -> None:
            pass  # already initialised once, below

    shared = object.__new__(Recording)
    MockBackend.__init__(shared)
    shared.register("v1", answer("v1"))

    registry.register_backend("recording", Recording, replace=True)
    try:
        spec = make_spec({"v1": 100}, backend="recording", settings={"seed": 7})
        the_plan = plan(spec)
        assert "seed" not in repr(the_plan)  # settings may hold credentials
        apply(the_plan)
        assert built == [{"seed": 7}, {"seed": 7}]
        assert shared.get("churn").traffic["v1"] == 100
    finally:
        registry._registry.pop("recording", None)
