"""Vertex AI's documented rules as the adapter meets them: names the service hands back, what
it refuses before and after a change, and what is checked before any call."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

from endpointkit.adapters.vertex import SettingIgnoredWarning, VertexBackend
from endpointkit.endpoint import Endpoint
from endpointkit.errors import Conflict, ValidationError
from endpointkit.spec import Autoscaling
from endpointkit.state import Status
from tests.conformance.suite import Versions
from tests.fakes.vertex import VertexFake
from tests.fakes.vertex_support import make_backend

BUCKET = "endpointkit-staging"


def test_a_model_name_with_a_version_suffix_keeps_the_versions_hash(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    # The service hands DeployedModel.model back as the request named it, version included
    # (`models/flow@1`): the adapter must not append a second `@1`.
    ep = Endpoint.create("flow", versions.echo("v1"), backend=backend)
    ep.deploy(versions.echo("v2"), traffic=10)
    assert fake.endpoints["flow"]["deployedModels"][0]["model"].endswith("/models/flow@1")
    state = ep.status()
    assert {v.name: v.spec_hash for v in state.versions} == {
        "v1": versions.echo("v1").spec_hash,
        "v2": versions.echo("v2").spec_hash,
    }
    # Deploying the same content again is a no-op, not a Conflict over a lost hash.
    again = ep.deploy(versions.echo("v2"), traffic=10)
    assert again.version_names == ["v1", "v2"]
    ep.undeploy("v1")
    assert list(fake.models["flow"]) == ["2"]  # the undeployed version's Model version is gone


def staged(fake: VertexFake, name: str) -> list[str]:
    return [o for o in fake.gcs_objects(BUCKET) if "/artifacts/" in o and f"/{name}/" in o]


def test_a_refused_upload_leaves_nothing_behind(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    refusal = "Model.container_spec.image_uri is not in Artifact Registry (simulated)."
    fake.inject("UploadModel", 400, message=refusal)
    with pytest.raises(ValidationError, match="simulated"):
        Endpoint.create("refused", versions.echo("v1"), backend=backend, timeout=60)
    assert "refused" not in fake.endpoints  # no empty endpoint
    assert "refused" not in fake.models
    assert staged(fake, "refused") == []  # the staged model directory is removed again

    ep = Endpoint.create("refused", versions.echo("v1"), backend=backend, timeout=60)
    fake.inject("UploadModel", 400, message=refusal)
    with pytest.raises(ValidationError, match="simulated"):
        ep.deploy(versions.echo("v2"), traffic=10, timeout=60)
    assert [o for o in staged(fake, "refused") if "/v2-" in o] == []
    assert list(fake.models["refused"]) == ["1"]
    state = ep.status()
    assert state.version_names == ["v1"]
    assert state.failure_reason is None  # nothing ran: the refusal was the whole answer


def test_a_version_without_an_image_is_refused_before_any_call(
    fake: VertexFake, versions: Versions, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = make_backend(fake, serving_image=None)
    try:
        with pytest.raises(ValidationError) as caught:
            backend.create("noimage", versions.echo("v1"))
        message = f"{caught.value} {caught.value.hint}"
        for named in ("serving_image", "ENDPOINTKIT_VERTEX_SERVING_IMAGE", "'image'", "v1"):
            assert named in message
        assert fake.requests == []  # nothing was sent, not even a read
        # The version's own image, or the environment's, is enough.
        image = "us-central1-docker.pkg.dev/p/r/serving:1"
        backend.create("ownimage", versions.echo("v1").model_copy(update={"image": image}))
        backend.wait("ownimage", timeout=60)
        assert fake.models["ownimage"]["1"]["containerSpec"]["imageUri"] == image
    finally:
        backend.close()
    monkeypatch.setenv("ENDPOINTKIT_VERTEX_SERVING_IMAGE", image)
    from_env = make_backend(fake, serving_image=None)
    try:
        from_env.create("envimage", versions.echo("v1"))
        from_env.wait("envimage", timeout=60)
    finally:
        from_env.close()


def test_traffic_changes_send_the_etag_and_a_lost_race_is_a_conflict(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    ep = Endpoint.create("race", versions.echo("v1"), backend=backend)
    ep.deploy(versions.echo("v2"), traffic=10)
    ids = {d["displayName"]: d["id"] for d in fake.endpoints["race"]["deployedModels"]}
    # Another writer moves traffic between endpointkit's read and its write.
    theirs = {ids["v1"]: 30, ids["v2"]: 70}
    fake.interleave(
        "UpdateEndpoint",
        lambda: fake.update_endpoint(
            "race", {"updateMask": "trafficSplit"}, {"trafficSplit": theirs}
        ),
    )
    with pytest.raises(Conflict) as caught:
        ep.set_traffic({"v1": 50, "v2": 50})
    assert fake.endpoints["race"]["trafficSplit"] == theirs  # theirs is not overwritten
    message = str(caught.value)
    assert "another writer made it v1=30, v2=70" in message  # it names the other change
    assert "it was v1=90, v2=10" in message
    assert caught.value.provider_code == "ABORTED"
    # Read again, write again: it goes through.
    ep.set_traffic({"v1": 50, "v2": 50})
    assert fake.endpoints["race"]["trafficSplit"] == {ids["v1"]: 50, ids["v2"]: 50}


def test_cooldowns_vertex_cannot_hold_are_warned_about(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    auto = Autoscaling(target_cpu_utilization=60, scale_in_cooldown_s=600)
    version = versions.echo("v1").model_copy(update={"autoscaling": auto})
    with pytest.warns(SettingIgnoredWarning, match=r"scale_in_cooldown_s.*vertex") as caught:
        ep = Endpoint.create("cool", version, backend=backend)
    assert "scale_out_cooldown_s" not in str(caught[0].message)  # only what was asked for
    assert caught[0].filename == __file__  # points at the caller's line
    with pytest.warns(SettingIgnoredWarning, match="scale_out_cooldown_s") as caught:
        ep.scale("v1", 1, 2, autoscaling={"target_cpu_utilization": 60, "scale_out_cooldown_s": 5})
    assert caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", SettingIgnoredWarning)  # no cooldowns asked: no warning
        ep.scale("v1", 1, 3, autoscaling={"target_cpu_utilization": 70})


def test_a_deploy_takes_time_and_the_endpoint_keeps_serving_meanwhile(
    tmp_path: Path, versions: Versions
) -> None:
    with VertexFake(tmp_path / "slow-fake", deploy_seconds=1.0) as fake:
        backend = make_backend(fake)
        try:
            ep = Endpoint.create("window", versions.echo("v1"), backend=backend, timeout=60)
            backend.deploy("window", versions.echo("v2"), 10)
            deadline = time.monotonic() + 30
            while not fake.running_operations() and time.monotonic() < deadline:
                time.sleep(0.02)
            # The DeployModel operation runs: v2 is not on the endpoint yet, v1 serves all.
            assert fake.running_operations()
            assert [d["displayName"] for d in fake.endpoints["window"]["deployedModels"]] == ["v1"]
            state = backend.get("window")
            assert state.status is Status.UPDATING
            assert "operation" in (state.raw_status or "")
            assert state.version_names == ["v1"]
            assert ep.predict([[1.0]]).version == "v1"
            state = ep.wait(timeout=60)
            assert state.traffic.serving() == {"v1": 90, "v2": 10}
        finally:
            backend.close()
