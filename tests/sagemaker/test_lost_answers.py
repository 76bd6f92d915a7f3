"""Mutating calls whose answer is lost after SageMaker applied them (issue 15, items 2 and 14).

The fake's `inject(..., after=True)` lets the call take effect and then answers 503, as a
dropped connection or a load balancer would; in-place changes stay Updating for a while
(`FakeSageMaker.settle_s`), so a retry that does not look first meets the in-progress
endpoint, as on AWS.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.sagemaker import SageMakerBackend
from tests.conformance.suite import Versions
from tests.fakes.sagemaker import ACCOUNT, FakeSageMaker
from tests.sagemaker.conftest import leftovers

pytestmark = pytest.mark.slow

NOTHING = {"endpoints": [], "configs": [], "models": [], "artifacts": []}


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


def _setup(ep_name: str, backend: SageMakerBackend, versions: Versions, *, v2: bool) -> Endpoint:
    ep = Endpoint.create(ep_name, versions.echo("v1"), backend=backend, timeout=60)
    if v2:
        ep.deploy(versions.echo("v2"), traffic=0, timeout=60)
    return ep


#: operation -> (the SageMaker action whose answer is lost, needs v2 deployed first,
#: the change, the history events it must add)
MATRIX: dict[str, tuple[str, bool, Callable[[Endpoint, Versions], object], list[str]]] = {
    "create": ("CreateEndpoint", False, lambda ep, vs: None, ["created", "deployed"]),
    "deploy": (
        "UpdateEndpoint",
        False,
        lambda ep, vs: ep.deploy(vs.echo("v2"), traffic=10, timeout=60),
        ["deployed"],
    ),
    "shift": (
        "UpdateEndpointWeightsAndCapacities",
        True,
        lambda ep, vs: ep.set_traffic({"v1": 50, "v2": 50}, timeout=60),
        ["traffic"],
    ),
    "shadow": (
        "UpdateEndpoint",
        True,
        lambda ep, vs: ep.set_shadow("v2", 20, timeout=60),
        ["shadow"],
    ),
    "scale": (
        "UpdateEndpointWeightsAndCapacities",
        False,
        lambda ep, vs: ep.scale("v1", 2, 2, timeout=60),
        ["scaled"],
    ),
    "undeploy": (
        "UpdateEndpoint",
        True,
        lambda ep, vs: ep.undeploy("v2", timeout=60),
        ["undeployed"],
    ),
    "delete": ("DeleteEndpoint", False, lambda ep, vs: ep.delete(), ["deleted"]),
}


@pytest.mark.parametrize("operation", list(MATRIX))
def test_a_lost_answer_converges_once(
    operation: str, fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    """The change took effect and its answer was lost: no duplicate resource, nothing
    orphaned, and exactly the history events of one change."""
    action, needs_v2, change, events = MATRIX[operation]
    if operation == "create":
        lost = fake.inject(action, "ServiceUnavailable", status=503, after=True)
        before = fake.calls[action]
        ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
        seen: list[str] = []
    else:
        ep = _setup(name, backend, versions, v2=needs_v2)
        seen = [e.kind for e in ep.history()]
        lost = fake.inject(action, "ServiceUnavailable", status=503, after=True)
        before = fake.calls[action]
        change(ep, versions)
    assert lost.fired == 1
    assert fake.calls[action] - before == 1, f"{action} was sent again"
    if operation == "delete":
        backend.wait_deleted(name, timeout=60)
        assert leftovers(fake, name) == NOTHING
    else:
        ep.status()  # settles the change
        left = leftovers(fake, name)
        live = fake.client("sagemaker").describe_endpoint(EndpointName=name)
        assert live["EndpointStatus"] == "InService"
        assert len(left["configs"]) <= 2  # the live one and one kept for rollback
        assert len(left["models"]) == len(set(left["models"]))
    kinds = [e.kind for e in backend.history(name)]
    assert kinds[len(seen) :] == events, kinds


def test_a_history_write_whose_answer_was_lost_records_the_event_once(
    fake: FakeSageMaker, backend: SageMakerBackend
) -> None:
    """The history is itself written by a mutating call (a conditional PutObject): a lost
    answer, then a retry refused by If-Match, must not append the event twice."""
    key = "endpointkit/sm-history-lost/history.json"
    backend._history.update("sm-history-lost", lambda d: d.append("created", message="first"))
    lost = fake.inject("PutObject", "ServiceUnavailable", status=503, after=True)
    try:
        backend._history.update("sm-history-lost", lambda d: d.append("traffic", message="once"))
        assert lost.fired == 1
        document = backend._history.read("sm-history-lost")
        assert document is not None
        assert [e.message for e in document.events] == ["first", "once"]
    finally:
        lost.times = 0
        fake.client("s3").delete_object(Bucket=f"sagemaker-us-east-1-{ACCOUNT}", Key=key)
