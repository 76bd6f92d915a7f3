"""Changes whose answer is lost after they took effect: the adapter looks before it retries,
so nothing is sent twice, nothing is duplicated or orphaned, and history has one event."""

from __future__ import annotations

import pytest

from endpointkit.adapters.vertex import VertexBackend
from endpointkit.endpoint import Endpoint
from tests.conformance.suite import Versions
from tests.fakes.vertex import VertexFake

BUCKET = "endpointkit-staging"


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


# (operation, the RPC whose answer is lost, the history event the operation records)
MATRIX = [
    ("create", "CreateEndpoint", "created"),
    ("create", "UploadModel", "created"),
    ("create", "DeployModel", "created"),
    ("deploy", "UploadModel", "deployed"),
    ("deploy", "DeployModel", "deployed"),
    ("shift", "UpdateEndpoint", "traffic"),
    ("scale", "MutateDeployedModel", "scaled"),
    ("undeploy", "UndeployModel", "undeployed"),
    ("undeploy", "MergeVersionAliases", "undeployed"),
    ("undeploy", "DeleteModelVersion", "undeployed"),
    ("delete", "UpdateEndpoint", "deleted"),
    ("delete", "UndeployModel", "deleted"),
    ("delete", "DeleteEndpoint", "deleted"),
    ("delete", "DeleteModel", "deleted"),
]


@pytest.mark.parametrize(
    ("operation", "rpc", "event"), MATRIX, ids=[f"{o}-{r}" for o, r, _ in MATRIX]
)
def test_every_change_converges_when_its_answer_is_lost(
    fake: VertexFake,
    backend: VertexBackend,
    versions: Versions,
    operation: str,
    rpc: str,
    event: str,
) -> None:
    name = "lost"
    v1, v2 = versions.echo("v1"), versions.echo("v2")
    if operation != "create":
        ep = Endpoint.create(name, v1, backend=backend)
        if operation in ("shift", "undeploy", "delete"):
            ep.deploy(v2, traffic=10)
    before = fake.calls(rpc)
    events = [e.kind for e in backend.history(name)] if operation != "create" else []
    # The change takes effect, then its answer is lost: an error, or (every other case) the
    # connection drops with no answer at all. Further calls would lose theirs too.
    drop = MATRIX.index((operation, rpc, event)) % 2 == 1
    fake.inject(rpc, 503, after=True, drop=drop, times=10)
    if operation == "create":
        ep = Endpoint.create(name, v1, backend=backend)
        expected: dict[str, int] | None = {"v1": 100}
    elif operation == "deploy":
        ep.deploy(v2, traffic=10)
        expected = {"v1": 90, "v2": 10}
    elif operation == "shift":
        ep.set_traffic({"v1": 40, "v2": 60})
        expected = {"v1": 40, "v2": 60}
    elif operation == "scale":
        ep.scale("v1", 2, 3)
        expected = {"v1": 100}
        entry = fake.endpoints[name]["deployedModels"][0]["dedicatedResources"]
        assert (entry["minReplicaCount"], entry["maxReplicaCount"]) == (2, 3)
    elif operation == "undeploy":
        ep.undeploy("v1")
        expected = {"v2": 100}
    else:
        ep.delete()
        backend.wait_deleted(name, timeout=60)
        expected = None

    sends = 2 if (operation, rpc) == ("delete", "UndeployModel") else 1  # one per version
    assert fake.calls(rpc) - before == sends, f"{rpc} was sent again"
    history = [e.kind for e in backend.history(name)]
    assert history.count(event) - events.count(event) == 1, history
    assert "failed" not in history
    if expected is None:  # deleted: nothing of it is left
        assert name not in fake.endpoints
        assert name not in fake.models
        assert not fake.live_processes()
        assert staged(fake, name) == []
        return
    state = ep.status()
    assert state.failure_reason is None
    assert state.traffic.serving() == expected
    deployed = fake.endpoints[name]["deployedModels"]
    live = sorted(d["displayName"] for d in deployed)
    assert live == sorted(expected)  # no DeployedModel twice
    # One Model version per live version, nothing else: no duplicate, nothing orphaned.
    aliases = sorted(a for m in fake.models[name].values() for a in m["versionAliases"])
    assert sorted(set(aliases) - {"default"}) == live
    assert len(fake.models[name]) == len(live)
    assert len(fake.live_processes()) == len(live)
    assert sorted({o.split(f"/{name}/")[1].split("-")[0] for o in staged(fake, name)}) == live
    assert [e for e in fake.endpoints if e == name] == [name]


def staged(fake: VertexFake, name: str) -> list[str]:
    return [o for o in fake.gcs_objects(BUCKET) if "/artifacts/" in o and f"/{name}/" in o]
