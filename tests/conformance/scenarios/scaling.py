"""Scaling a live version in place through plan/apply and Endpoint.scale."""

from __future__ import annotations

import pytest

from endpointkit import Endpoint, EndpointSpec, apply, plan
from endpointkit.adapters.base import Backend, Capability
from endpointkit.errors import NotFound, Unsupported, ValidationError
from endpointkit.spec import Scaling
from tests.conformance.scenarios.base import SuiteBase, Versions, lacks, needs


class ScalingScenarios(SuiteBase):
    def scaled_spec(self, endpoint: Endpoint, backend: Backend, versions: Versions) -> EndpointSpec:
        """v1 at two replicas, v2 as deployed, half the traffic each."""
        two = versions.echo("v1").with_scaling(Scaling(min_replicas=2, max_replicas=2))
        return EndpointSpec(
            name=endpoint.name,
            backend=backend.name,
            versions=[two, versions.echo("v2")],
            traffic={"v1": 50, "v2": 50},
        )

    @needs(Capability.SCALING)
    def test_scaling_changes_in_place(
        self, endpoint: Endpoint, backend: Backend, versions: Versions
    ) -> None:
        """A spec that only changes replicas plans one "scale" step; the version keeps its name,
        hash and traffic, and answers throughout."""
        endpoint.deploy(versions.echo("v2"), traffic=50, timeout=120)
        spec = self.scaled_spec(endpoint, backend, versions)
        the_plan = plan(spec, backend)
        assert [a.kind for a in the_plan.actions] == ["scale"], the_plan.diff()
        events = len(endpoint.history())
        state = apply(the_plan, backend, timeout=120).state
        assert state is not None
        live = state.version("v1")
        assert live is not None
        assert live.spec_hash == versions.echo("v1").spec_hash
        assert backend.live_scaling(state)["v1"].min_replicas == 2
        assert state.traffic.serving() == {"v1": 50, "v2": 50}
        assert [e.kind for e in endpoint.history()[events:]] == ["scaled"]
        assert not plan(spec, backend), plan(spec, backend).diff()
        assert set(self.served(endpoint, 30)) == {"v1", "v2"}
        with pytest.raises(NotFound):
            endpoint.scale("v9", 2)
        back = endpoint.scale("v1", 1, 1, timeout=120)
        assert backend.live_scaling(back)["v1"].min_replicas == 1

    @lacks(Capability.SCALING)
    def test_scaling_is_unsupported(
        self, endpoint: Endpoint, backend: Backend, versions: Versions
    ) -> None:
        endpoint.deploy(versions.echo("v2"), traffic=50, timeout=120)
        with pytest.raises((Unsupported, ValidationError), match=backend.name):
            plan(self.scaled_spec(endpoint, backend, versions), backend)
        with pytest.raises(Unsupported, match=backend.name):
            endpoint.scale("v1", 2, 2)
        assert endpoint.status().traffic.serving() == {"v1": 50, "v2": 50}
