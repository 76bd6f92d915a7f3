"""Changes whose answer is lost after they took effect: the adapter looks before it retries,
so nothing is sent twice, nothing is duplicated or orphaned, and history has one event."""

from __future__ import annotations

import pytest

from endpointkit.adapters.vertex import VertexBackend
from endpointkit.endpoint import Endpoint
from tests.conformance.suite import Versions
from tests.fakes.vertex import VertexFake


@pytest.mark.parametrize("lost", ["error", "dropped"])
def test_a_lost_undeploy_answer_is_checked_not_resent(
    fake: VertexFake, backend: VertexBackend, versions: Versions, lost: str
) -> None:
    ep = Endpoint.create("undo", versions.echo("v1"), backend=backend)
    ep.deploy(versions.echo("v2"), traffic=10)
    # Every UndeployModel takes effect and loses its answer (503, or the connection drops):
    # only looking at the endpoint tells that the first one worked.
    fake.inject("UndeployModel", 503, after=True, drop=lost == "dropped", times=10)
    state = ep.undeploy("v1")
    assert state.version_names == ["v2"]
    assert state.failure_reason is None
    assert fake.calls("UndeployModel") == 1
    assert list(fake.models["undo"]) == ["2"]  # v1's Model version is not left behind
    assert [e.kind for e in ep.history()].count("undeployed") == 1
