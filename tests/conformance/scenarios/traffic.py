"""Versions and traffic: canary, shift, promote, undeploy, rollback, pinned versions."""

from __future__ import annotations

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.base import Backend, Capability
from endpointkit.errors import NotFound, Unsupported, ValidationError
from tests.conformance.scenarios.base import SuiteBase, Versions, lacks, needs


class TrafficScenarios(SuiteBase):
    def test_canary_shift_promote_undeploy(self, endpoint: Endpoint, versions: Versions) -> None:
        state = endpoint.deploy(versions.echo("v2"), traffic=10, timeout=120)
        assert state.traffic.serving() == {"v1": 90, "v2": 10}
        counts = self.served(endpoint)
        assert counts["v1"] > counts["v2"] > 0
        endpoint.set_traffic({"v1": 50, "v2": 50}, timeout=120)
        counts = self.served(endpoint)
        assert counts["v1"] > 0
        assert counts["v2"] > 0
        endpoint.promote("v2", timeout=120)
        assert set(self.served(endpoint, 20)) == {"v2"}
        state = endpoint.undeploy("v1", timeout=120)
        assert state.version_names == ["v2"]
        assert state.traffic.serving() == {"v2": 100}

    def test_zero_traffic_version_stays_deployed_and_idle(
        self, endpoint: Endpoint, versions: Versions
    ) -> None:
        state = endpoint.deploy(versions.echo("v2"), traffic=0, timeout=120)
        assert state.version_names == ["v1", "v2"]
        assert set(self.served(endpoint, 30)) == {"v1"}

    def test_rollback_restores_the_previous_split(
        self, endpoint: Endpoint, versions: Versions
    ) -> None:
        endpoint.deploy(versions.echo("v2"), traffic=20, timeout=120)
        endpoint.promote("v2", timeout=120)
        state = endpoint.rollback(timeout=120)
        assert state.traffic.serving() == {"v1": 80, "v2": 20}

    def test_invalid_traffic_changes_nothing(self, endpoint: Endpoint, versions: Versions) -> None:
        endpoint.deploy(versions.echo("v2"), traffic=30, timeout=120)
        with pytest.raises(ValidationError, match="sum to 100"):
            endpoint.set_traffic({"v1": 60, "v2": 60})
        with pytest.raises(NotFound, match="v9"):
            endpoint.set_traffic({"v1": 50, "v9": 50})
        endpoint.promote("v2", timeout=120)
        with pytest.raises(ValidationError, match="serves all traffic"):
            endpoint.undeploy("v2")
        assert endpoint.status().traffic.serving() == {"v2": 100}

    @needs(Capability.TARGET_VERSION)
    def test_target_version(self, endpoint: Endpoint, versions: Versions) -> None:
        endpoint.deploy(versions.echo("v2"), traffic=0, timeout=120)
        for _ in range(5):
            assert endpoint.predict([[1.0]], version="v2").version == "v2"

    @lacks(Capability.TARGET_VERSION)
    def test_target_version_is_unsupported(
        self, endpoint: Endpoint, backend: Backend, versions: Versions
    ) -> None:
        endpoint.deploy(versions.echo("v2"), traffic=0, timeout=120)
        with pytest.raises(Unsupported, match=backend.name):
            endpoint.predict([[1.0]], version="v2")
        assert set(self.served(endpoint, 10)) == {"v1"}  # unpinned requests still answer
