"""Mutating calls whose answer is lost after SageMaker applied them (issue 15, items 2 and 14).

The fake's `inject(..., after=True)` lets the call take effect and then answers 503, as a
dropped connection or a load balancer would; in-place changes stay Updating for a while
(`FakeSageMaker.settle_s`), so a retry that does not look first meets the in-progress
endpoint, as on AWS.
"""

from __future__ import annotations

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.sagemaker import SageMakerBackend
from tests.conformance.suite import Versions
from tests.fakes.sagemaker import FakeSageMaker

pytestmark = pytest.mark.slow


def test_a_traffic_shift_whose_answer_was_lost_is_not_resent_and_is_recorded(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    ep.deploy(versions.echo("v2"), traffic=0, timeout=60)
    before = fake.calls["UpdateEndpointWeightsAndCapacities"]
    lost = fake.inject(
        "UpdateEndpointWeightsAndCapacities", "ServiceUnavailable", status=503, after=True
    )
    state = ep.set_traffic({"v1": 50, "v2": 50}, timeout=60)
    assert lost.fired == 1
    assert fake.calls["UpdateEndpointWeightsAndCapacities"] - before == 1  # looked, not re-sent
    assert state.traffic.serving() == {"v1": 50, "v2": 50}
    last = ep.history()[-1]
    assert (last.kind, last.traffic_after) == ("traffic", {"v1": 50, "v2": 50})
