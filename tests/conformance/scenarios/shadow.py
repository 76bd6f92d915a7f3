"""Shadow versions: a sample of live requests copied to a version that never answers."""

from __future__ import annotations

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.base import Backend, Capability
from endpointkit.errors import Conflict, Unsupported, ValidationError
from endpointkit.spec import Shadow
from tests.conformance.scenarios.base import SuiteBase, Versions, lacks, needs


class ShadowScenarios(SuiteBase):
    @needs(Capability.SHADOW)
    def test_shadow(self, endpoint: Endpoint, versions: Versions) -> None:
        endpoint.deploy(versions.echo("v3"), traffic=0, timeout=120)
        state = endpoint.set_shadow("v3", 50, timeout=120)
        assert state.shadow == Shadow(version="v3", sample_percent=50)
        assert set(self.served(endpoint, 30)) == {"v1"}  # the shadow never answers
        with pytest.raises(ValidationError, match="shadow"):
            endpoint.set_traffic({"v1": 50, "v3": 50})
        with pytest.raises(Conflict, match="shadow"):
            endpoint.undeploy("v3")
        assert endpoint.set_shadow(None, timeout=120).shadow is None

    @lacks(Capability.SHADOW)
    def test_shadow_is_unsupported(
        self, endpoint: Endpoint, backend: Backend, versions: Versions
    ) -> None:
        endpoint.deploy(versions.echo("v3"), traffic=0, timeout=120)
        with pytest.raises(Unsupported, match=backend.name):
            endpoint.set_shadow("v3", 50)
        assert endpoint.status().shadow is None
