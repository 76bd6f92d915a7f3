"""Declarative plan/apply: each step is planned as expected, and applying twice changes nothing."""

from __future__ import annotations

from endpointkit import EndpointSpec, apply, plan
from endpointkit.adapters.base import Backend
from endpointkit.planner import destroy
from tests.conformance.scenarios.base import SuiteBase, Versions


class PlanApplyScenarios(SuiteBase):
    def test_plan_apply_is_idempotent(
        self, backend: Backend, versions: Versions, name: str
    ) -> None:
        def spec(traffic: dict[str, int]) -> EndpointSpec:
            return EndpointSpec(
                name=name,
                backend=backend.name,
                versions=[versions.echo(v) for v in traffic],
                traffic=traffic,
            )

        try:
            first = spec({"v1": 100})
            apply(first, backend, timeout=120)
            assert not plan(first, backend)
            second = spec({"v1": 90, "v2": 10})
            assert [a.kind for a in plan(second, backend).actions] == ["deploy", "traffic"]
            apply(second, backend, timeout=120)
            assert not plan(second, backend)
            third = spec({"v2": 100})
            assert [a.kind for a in plan(third, backend).actions] == ["traffic", "undeploy"]
            state = apply(third, backend, timeout=120).state
            assert state is not None
            assert state.version_names == ["v2"]
            assert not plan(third, backend)
        finally:
            destroy(name, backend, timeout=120)
        assert not backend.exists(name)
