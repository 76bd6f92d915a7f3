"""Failure paths: failed deployments, model errors, version features a backend lacks."""

from __future__ import annotations

from typing import Any

import pytest

from endpointkit import Endpoint, VersionSpec
from endpointkit.adapters.base import Backend, Capability
from endpointkit.errors import DeploymentFailed, ModelError, Unsupported
from tests.conformance.scenarios.base import SuiteBase, Versions, lacks

#: Version settings that need a capability, by capability.
FEATURES = {
    Capability.SERVERLESS: {"serverless": {"memory_mb": 2048}},
    Capability.ASYNC_INFERENCE: {"async_inference": {"output_path": "s3://bucket/out"}},
}


class FailureScenarios(SuiteBase):
    def test_failed_deploy_reports_reason_and_keeps_serving(
        self, endpoint: Endpoint, versions: Versions
    ) -> None:
        with pytest.raises(DeploymentFailed) as caught:
            endpoint.deploy(versions.broken("v2"), traffic=10, timeout=120)
        assert "cannot load weights" in str(caught.value)
        state = endpoint.status()
        assert state.version_names == ["v1"]
        assert state.traffic.serving() == {"v1": 100}
        assert endpoint.predict([[1.0]]).predictions == ["v1"]
        assert any(e.kind == "failed" for e in endpoint.history())

    def test_model_error_keeps_status_and_endpoint_keeps_serving(
        self, endpoint: Endpoint, versions: Versions
    ) -> None:
        endpoint.deploy(versions.rejecting("v2"), traffic=100, timeout=120)
        with pytest.raises(ModelError) as caught:
            endpoint.predict([[1.0]])
        assert caught.value.status is not None
        assert 400 <= caught.value.status < 500
        assert "rejects every input" in caught.value.body_excerpt
        endpoint.promote("v1", timeout=120)
        assert endpoint.predict([[1.0]]).predictions == ["v1"]

    @pytest.mark.parametrize(
        ("capability", "extra"),
        [pytest.param(c, extra, marks=lacks(c), id=str(c)) for c, extra in FEATURES.items()],
    )
    def test_unsupported_version_features_raise_before_any_change(
        self,
        endpoint: Endpoint,
        backend: Backend,
        versions: Versions,
        capability: Capability,
        extra: dict[str, Any],
    ) -> None:
        events = len(endpoint.history())
        version = VersionSpec.model_validate({**versions.echo("v2").model_dump(), **extra})
        with pytest.raises(Unsupported, match=backend.name):
            endpoint.deploy(version)
        assert endpoint.status().version_names == ["v1"]
        assert len(endpoint.history()) == events
