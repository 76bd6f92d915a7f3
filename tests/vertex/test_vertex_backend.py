"""Vertex-specific behaviour: the wire mapping, failures, retries, LRO waiting, invocation and
history, checked against the fake's own state (what Vertex AI would hold)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from endpointkit.adapters.vertex import VertexBackend
from endpointkit.endpoint import Endpoint
from endpointkit.errors import (
    Conflict,
    DeploymentFailed,
    ModelError,
    NotFound,
    PayloadTooLarge,
    Timeout,
    Unsupported,
    ValidationError,
)
from endpointkit.invocation import InvokeRequest
from endpointkit.planner import apply, plan
from endpointkit.spec import Autoscaling, EndpointSpec, Resources, Scaling, VersionSpec
from endpointkit.state import Status
from tests.conformance.suite import Versions
from tests.fakes.vertex import VertexFake
from tests.fakes.vertex_support import SERVING_IMAGE, make_backend

BUCKET = "endpointkit-staging"


def split_by_name(fake: VertexFake, endpoint_id: str) -> dict[str, int]:
    """The live split on the fake, keyed by deployed-model display name (version)."""
    endpoint = fake.endpoints[endpoint_id]
    names = {d["id"]: d["displayName"] for d in endpoint["deployedModels"]}
    return {names[k]: v for k, v in endpoint["trafficSplit"].items()}


def served(ep: Endpoint, n: int) -> set[str | None]:
    return {ep.predict([[1.0]]).version for _ in range(n)}


def assert_nothing_left(fake: VertexFake, name: str) -> None:
    assert name not in fake.endpoints
    assert name not in fake.models
    assert not fake.live_processes()
    leftovers = [o for o in fake.gcs_objects(BUCKET) if "/artifacts/" in o and f"/{name}/" in o]
    assert leftovers == []


def test_canary_flow_maps_onto_vertex_resources(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    ep = Endpoint.create("flow", versions.echo("v1"), backend=backend, tags={"team": "ml"})
    endpoint = fake.endpoints["flow"]
    assert endpoint["labels"] == {
        "team": "ml",
        "managed-by": "endpointkit",
        "endpointkit-endpoint": "flow",
    }
    assert split_by_name(fake, "flow") == {"v1": 100}
    v1 = fake.models["flow"]["1"]
    assert v1["versionAliases"] == ["default", "v1"]
    assert v1["labels"]["endpointkit-hash"] == versions.echo("v1").spec_hash
    assert v1["containerSpec"]["predictRoute"] == "/predict"
    assert v1["containerSpec"]["healthRoute"] == "/health"
    env = {e["name"]: e["value"] for e in v1["containerSpec"]["env"]}
    assert env == {"ENDPOINTKIT_PREDICTOR": "echo_predictor:Echo", "ENDPOINTKIT_VERSION": "v1"}
    assert v1["artifactUri"].startswith(f"gs://{BUCKET}/tests/endpointkit/artifacts/")

    ep.deploy(versions.echo("v2"), traffic=10)
    assert split_by_name(fake, "flow") == {"v1": 90, "v2": 10}
    assert fake.models["flow"]["2"]["versionAliases"] == ["v2"]  # parent_model: a new version
    deploy_body = [p for m, p, rpc in fake.requests if rpc == "DeployModel"]
    assert len(deploy_body) == 2
    assert served(ep, 60) == {"v1", "v2"}

    ep.set_traffic({"v1": 50, "v2": 50})
    assert split_by_name(fake, "flow") == {"v1": 50, "v2": 50}
    ep.promote("v2")
    assert split_by_name(fake, "flow") == {"v2": 100}
    assert served(ep, 10) == {"v2"}

    state = ep.undeploy("v1")
    assert state.version_names == ["v2"]
    assert split_by_name(fake, "flow") == {"v2": 100}
    # v1's Model version is gone; the default alias moved to v2 first.
    assert list(fake.models["flow"]) == ["2"]
    assert fake.models["flow"]["2"]["versionAliases"] == ["v2", "default"]
    assert len(fake.live_processes()) == 1

    kinds = [e.kind for e in ep.history()]
    assert kinds == ["created", "deployed", "deployed", "traffic", "traffic", "undeployed"]

    ep.delete()
    backend.wait_deleted("flow", timeout=60)
    assert_nothing_left(fake, "flow")
    # History outlives the endpoint (and this backend instance).
    other = make_backend(fake)
    try:
        assert [e.kind for e in other.history("flow")][-1] == "deleted"
    finally:
        other.close()


def test_failed_deploy_reports_the_cause_and_leaves_nothing_behind(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    ep = Endpoint.create("fails", versions.echo("v1"), backend=backend)
    with pytest.raises(DeploymentFailed) as caught:
        ep.deploy(versions.broken("v2"), traffic=10, timeout=60)
    error = caught.value
    assert "Model server never became ready" in error.reason  # the operation's own error
    assert "cannot load weights" in error.reason  # the container's last error, from the logs
    assert "removed" in error.reason  # it says what it cleaned up
    assert error.log_hint.startswith("https://console.cloud.google.com/logs/")
    assert error.version == "v2"
    state = ep.status()
    assert state.status is Status.IN_SERVICE
    assert state.failure_reason
    assert "cannot load weights" in state.failure_reason
    assert split_by_name(fake, "fails") == {"v1": 100}
    assert list(fake.models["fails"]) == ["1"]  # no orphaned Model version
    assert not [o for o in fake.gcs_objects(BUCKET) if "/fails/v2-" in o]
    assert ep.history()[-1].kind == "failed"

    # A deploy the platform fails on its own (no container involved) is reported the same way.
    fake.fail_deploy("Machine type n1-standard-2 is temporarily out of stock.")
    with pytest.raises(DeploymentFailed, match="out of stock"):
        ep.deploy(versions.echo("v3"), traffic=10, timeout=60)
    assert list(fake.models["fails"]) == ["1"]

    # The endpoint still deploys a good version afterwards; the failure is cleared.
    state = ep.deploy(versions.echo("v3"), traffic=10, timeout=60)
    assert state.failure_reason is None
    assert split_by_name(fake, "fails") == {"v1": 90, "v3": 10}


def test_failed_create_is_a_failed_endpoint_that_destroy_removes(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    with pytest.raises(DeploymentFailed, match="cannot load weights"):
        Endpoint.create("dead", versions.broken("v1"), backend=backend, timeout=60)
    state = backend.get("dead")
    assert state.status is Status.FAILED
    assert "dead" not in fake.models  # the first Model version was removed again
    # Another process (a fresh backend) reads the same status and reason from the history.
    other = make_backend(fake)
    try:
        seen = other.get("dead")
        assert seen.status is Status.FAILED
        assert seen.failure_reason
        assert "cannot load weights" in seen.failure_reason
    finally:
        other.close()
    # A delete that stops half-way says why, and running it again finishes the job.
    fake.inject("DeleteEndpoint", 400, message="Simulated refusal.")
    backend.delete("dead")
    with pytest.raises(Conflict, match="Simulated refusal"):
        backend.wait_deleted("dead", timeout=60)
    backend.delete("dead")
    backend.wait_deleted("dead", timeout=60)
    assert_nothing_left(fake, "dead")


def test_throttling_and_unavailability_are_retried(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    fake.inject("GetEndpoint", 503, times=2)
    fake.inject("UploadModel", 429)
    fake.inject("DeployModel", 503)
    ep = Endpoint.create("retry", versions.echo("v1"), backend=backend, sleep=lambda _: None)
    assert split_by_name(fake, "retry") == {"v1": 100}
    assert fake.calls("UploadModel") == 2
    assert fake.calls("DeployModel") == 2

    fake.inject("RawPredict", 429)
    fake.inject("RawPredict", 503)
    before = fake.calls("RawPredict")
    assert ep.predict([[1.0]]).predictions == ["v1"]
    assert fake.calls("RawPredict") == before + 3

    fake.inject("UpdateEndpoint", 429, times=2)
    ep.deploy(versions.echo("v2"), traffic=0)
    ep.promote("v2")
    assert split_by_name(fake, "retry") == {"v2": 100}

    # Errors that retrying cannot fix are raised at once, mapped, with the platform's words.
    fake.inject("RawPredict", 400, message="Invalid instances.")
    before = fake.calls("RawPredict")
    with pytest.raises(ValidationError, match="Invalid instances") as caught:
        ep.predict([[1.0]])
    assert caught.value.provider_code == "INVALID_ARGUMENT"
    assert fake.calls("RawPredict") == before + 1


def test_a_lost_response_is_not_sent_twice(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    # The create/upload/deploy take effect, but their answers are lost (503 after the fact):
    # retrying blindly would fail with ALREADY_EXISTS or deploy twice.
    fake.inject("CreateEndpoint", 503, after=True)
    fake.inject("UploadModel", 503, after=True)
    fake.inject("DeployModel", 503, after=True)
    ep = Endpoint.create("lost", versions.echo("v1"), backend=backend)
    assert fake.calls("CreateEndpoint") == 1
    assert fake.calls("UploadModel") == 1
    assert fake.calls("DeployModel") == 1
    assert list(fake.models["lost"]) == ["1"]
    assert len(fake.endpoints["lost"]["deployedModels"]) == 1
    assert ep.predict([[1.0]]).predictions == ["v1"]


def test_operations_are_polled_with_progress(tmp_path: Path, versions: Versions) -> None:
    with VertexFake(tmp_path / "polls", lro_polls=1) as fake:
        backend = make_backend(fake)
        try:
            seen: list[Status] = []
            ep = Endpoint.create(
                "polled",
                versions.echo("v1"),
                backend=backend,
                progress=lambda s: seen.append(s.status),
            )
            assert ep.status().status is Status.IN_SERVICE
            polls = [path for _, path, rpc in fake.requests if rpc == "GetOperation"]
            assert polls
            assert all(p.startswith("/ui/") for p in polls)
            assert seen[-1] is Status.IN_SERVICE
        finally:
            backend.close()


def test_wait_respects_the_callers_timeout(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    ep = Endpoint.create("slow", versions.echo("v1"), backend=backend)
    fake.lro_polls = 10**6  # operations never finish until told to
    with pytest.raises(Timeout) as caught:
        ep.deploy(versions.echo("v2"), traffic=10, timeout=0.5)
    assert caught.value.last_status == "Updating"
    assert "operation" in str(caught.value)  # names the operation still running
    assert backend.get("slow").status is Status.UPDATING
    fake.finish_operations()
    state = ep.wait(timeout=60)
    assert state.version_names == ["v1", "v2"]


def test_invocation_details(
    fake: VertexFake, backend: VertexBackend, versions: Versions, identity_model: Path
) -> None:
    version = VersionSpec(
        name="v1", model=str(identity_model), predictor="identity_predictor:Identity"
    )
    ep = Endpoint.create("inv", version, backend=backend)
    big = 2**53 + 1
    # Raw mode (rawPredict) keeps the bytes exact; GAPIC predict turns integers into floats.
    assert ep.predict([[1, big]]).predictions == [[1, big]]
    gapic = backend.predict("inv", [[1, 2]])
    assert gapic.predictions == [[1.0, 2.0]]
    assert all(isinstance(x, float) for x in gapic.predictions[0])
    assert gapic.version == "v1"
    raw = ep.invoke(b'{"instances": [3]}')
    assert raw.version == "v1"
    assert (
        raw.headers["X-Vertex-AI-Deployed-Model-Id"]
        == fake.endpoints["inv"]["deployedModels"][0]["id"]
    )

    with pytest.raises(Unsupported, match="vertex") as caught:
        ep.predict([[1]], version="v1")
    assert "traffic split" in str(caught.value)

    before = fake.calls("RawPredict")
    with pytest.raises(PayloadTooLarge):
        ep.invoke(b"x" * (1_572_864 + 1))
    assert fake.calls("RawPredict") == before  # checked before sending

    with pytest.raises(NotFound):
        backend.invoke(InvokeRequest("never-made", b"{}"))


def test_model_errors_carry_the_containers_answer(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    ep = Endpoint.create("rej", versions.rejecting("v1"), backend=backend)
    with pytest.raises(ModelError) as caught:
        ep.predict([[1.0]])
    assert caught.value.status is not None
    assert 400 <= caught.value.status < 500
    assert "rejects every input" in caught.value.body_excerpt
    assert caught.value.version == "v1"


def test_resources_accelerators_and_autoscaling_reach_the_deployed_model(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    base = versions.echo("v1")
    gpu = base.model_copy(
        update={
            "resources": Resources(
                machine_type="g2-standard-8",
                accelerator_type="NVIDIA_L4",
                accelerator_count=1,
                min_replicas=1,
                max_replicas=3,
            ),
            "autoscaling": Autoscaling(
                target_cpu_utilization=60, target_invocations_per_replica=100
            ),
        }
    )
    Endpoint.create("gpu", gpu, backend=backend)
    resources = fake.endpoints["gpu"]["deployedModels"][0]["dedicatedResources"]
    assert resources["machineSpec"] == {
        "machineType": "g2-standard-8",
        "acceleratorType": 11,  # NVIDIA_L4, sent as an integer enum
        "acceleratorCount": 1,
    }
    assert resources["minReplicaCount"] == 1
    assert resources["maxReplicaCount"] == 3
    assert {m["metricName"]: m["target"] for m in resources["autoscalingMetricSpecs"]} == {
        "aiplatform.googleapis.com/prediction/online/cpu/utilization": 60,
        "aiplatform.googleapis.com/prediction/online/request_count": 100,
    }

    bad = base.model_copy(
        update={
            "name": "v2",
            "resources": Resources(accelerator_type="NVIDIA_TESLA_Z9", accelerator_count=1),
        }
    )
    before = len(fake.requests)
    with pytest.raises(ValidationError, match="NVIDIA_TESLA_Z9"):
        backend.deploy("gpu", bad, 0)
    assert not [r for r in fake.requests[before:] if r[2] not in ("GetEndpoint", "GetModel")]


def test_endpoints_endpointkit_did_not_create_are_left_alone(
    fake: VertexFake, backend: VertexBackend
) -> None:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1

    client = aiplatform_v1.EndpointServiceClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=fake.url),
    )
    client.create_endpoint(
        parent=f"projects/{fake.project}/locations/{fake.location}",
        endpoint=aiplatform_v1.Endpoint(display_name="theirs"),
        endpoint_id="theirs",
    ).result()
    with pytest.raises(NotFound, match="did not create"):
        backend.get("theirs")
    with pytest.raises(NotFound):
        backend.delete("theirs")
    assert "theirs" in fake.endpoints
    assert "theirs" not in [s.name for s in backend.list_endpoints()]


def test_settings_are_checked_before_any_call(fake: VertexFake, versions: Versions) -> None:
    backend = make_backend(fake, staging_bucket=None)
    try:
        with pytest.raises(ValidationError, match="staging_bucket"):
            backend.create("nobucket", versions.echo("v1"))
        assert "nobucket" not in fake.endpoints
    finally:
        backend.close()
    with pytest.raises(ValidationError, match="rest"):
        make_backend(fake, transport="grpc")


def test_importing_the_adapter_imports_no_google_code() -> None:
    code = (
        "import sys, endpointkit, endpointkit.adapters.vertex\n"
        "heavy = ('google.cloud.aiplatform', 'google.api_core', 'google.auth', 'google.protobuf')\n"
        "loaded = [m for m in sys.modules if m.startswith(heavy)]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def _settings_json(fake: VertexFake) -> dict[str, Any]:
    return {
        "project": fake.project,
        "location": fake.location,
        "api_endpoint": fake.url,
        "credentials": "anonymous",
        "staging_bucket": f"gs://{BUCKET}/cli",
        "serving_image": SERVING_IMAGE,
    }


def test_cli_apply_twice_is_a_no_op(
    fake: VertexFake, versions: Versions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from endpointkit.cli import main

    v1, v2 = versions.echo("v1"), versions.echo("v2")
    spec = {
        "name": "cli-ep",
        "backend": "vertex",
        "settings": _settings_json(fake),
        "versions": [
            {"name": v.name, "model": v.model, "predictor": v.predictor} for v in (v1, v2)
        ],
        "traffic": {"v1": 90, "v2": 10},
    }
    path = tmp_path / "endpoint.json"
    path.write_text(json.dumps(spec))
    assert main(["apply", str(path), "--timeout", "120"]) == 0
    assert split_by_name(fake, "cli-ep") == {"v1": 90, "v2": 10}
    mutations = [r for r in fake.requests if r[0] != "GET"]
    capsys.readouterr()

    assert main(["apply", str(path), "--timeout", "120"]) == 0
    assert "no changes" in capsys.readouterr().out
    assert [r for r in fake.requests if r[0] != "GET"] == mutations  # nothing was sent

    # Settings from --set work the same way as settings in the spec.
    spec.pop("settings")
    path.write_text(json.dumps(spec))
    sets = [arg for k, v in _settings_json(fake).items() for arg in ("--set", f"{k}={v}")]
    assert main(["plan", str(path), *sets, "--detailed-exitcode"]) == 0
    assert main(["destroy", str(path), *sets, "--timeout", "120"]) == 0
    assert_nothing_left(fake, "cli-ep")


def test_dedicated_endpoints_pin_versions_through_the_invoke_api(
    fake: VertexFake, versions: Versions
) -> None:
    backend = make_backend(fake, dedicated_endpoint=True)
    try:
        assert "target_version" in {str(c) for c in backend.capabilities}
        assert backend.max_payload_bytes == 10 * 1024 * 1024
        ep = Endpoint.create("ded", versions.echo("v1"), backend=backend)
        assert fake.endpoints["ded"]["dedicatedEndpointEnabled"] is True
        spec = fake.models["ded"]["1"]["containerSpec"]
        assert spec["invokeRoutePrefix"] == "/*"
        assert "predictRoute" not in spec
        ep.deploy(versions.echo("v2"), traffic=0)
        assert {ep.predict([[1.0]], version="v2").version for _ in range(5)} == {"v2"}
        assert served(ep, 10) == {"v1"}  # unpinned requests follow the split
        dm_v2 = ep.status().details["deployed_model_ids"]["v2"]
        pinned = [p for _, p, rpc in fake.requests if rpc == "Invoke" and dm_v2 in p]
        assert pinned
        assert pinned[0].endswith(f"/endpoints/ded/deployedModels/{dm_v2}/invoke/predict")
        with pytest.raises(NotFound, match="v9"):
            ep.predict([[1.0]], version="v9")
    finally:
        backend.close()
    # The fake holds the platform's rules: invoke-route models need a dedicated endpoint, and a
    # shared endpoint has no Invoke API.
    shared = make_backend(fake)
    try:
        Endpoint.create("shared", versions.echo("v1"), backend=shared)
        import requests

        url = f"{fake.url}/v1/projects/{fake.project}/locations/{fake.location}/endpoints/shared"
        answer = requests.post(f"{url}/invoke/predict", data=b"{}", timeout=30)
        assert answer.status_code == 400
        assert "dedicated" in answer.json()["error"]["message"]
    finally:
        shared.close()


def test_scale_changes_replicas_in_place(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    version = versions.echo("v1").model_copy(
        update={"resources": Resources(min_replicas=1, max_replicas=2)}
    )
    ep = Endpoint.create("scale", version, backend=backend)
    dm_id = fake.endpoints["scale"]["deployedModels"][0]["id"]
    state = ep.scale("v1", 2, 5, autoscaling={"target_cpu_utilization": 70}, timeout=60)
    deployed = fake.endpoints["scale"]["deployedModels"][0]
    resources = deployed["dedicatedResources"]
    assert (resources["minReplicaCount"], resources["maxReplicaCount"]) == (2, 5)
    assert resources["autoscalingMetricSpecs"] == [
        {"metricName": "aiplatform.googleapis.com/prediction/online/cpu/utilization", "target": 70}
    ]
    assert deployed["id"] == dm_id  # the same DeployedModel, not a new one
    live = state.version("v1")
    assert live is not None
    assert live.replicas == 2
    assert live.spec_hash == version.spec_hash
    assert live.scaling == Scaling(
        min_replicas=2, max_replicas=5, autoscaling=Autoscaling(target_cpu_utilization=70)
    )
    assert "to 2-5 replicas, autoscaling on cpu 70% in place" in ep.history()[-1].message
    assert ep.predict([[1.0]]).version == "v1"
    with pytest.raises(ValidationError, match="max_replicas"):
        ep.scale("v1", 3, 2)
    # Asking for what it already has calls nothing.
    before = fake.calls("MutateDeployedModel")
    ep.scale("v1", 2, 5)
    assert fake.calls("MutateDeployedModel") == before


def test_apply_scales_a_live_version_in_place(
    fake: VertexFake, backend: VertexBackend, versions: Versions
) -> None:
    base = versions.echo("v1")
    spec = EndpointSpec(name="scaled", backend="vertex", versions=[base])
    apply(spec, backend, timeout=60)
    models_before = sum(len(v) for v in fake.models.values())
    wider = base.with_scaling(Scaling(min_replicas=2, max_replicas=4))
    the_plan = plan(EndpointSpec(name="scaled", backend="vertex", versions=[wider]), backend)
    assert [a.kind for a in the_plan.actions] == ["scale"]
    assert "1 replica -> 2-4 replicas" in the_plan.diff()
    apply(the_plan, backend, timeout=60)
    resources = fake.endpoints["scaled"]["deployedModels"][0]["dedicatedResources"]
    assert (resources["minReplicaCount"], resources["maxReplicaCount"]) == (2, 4)
    assert sum(len(v) for v in fake.models.values()) == models_before  # no new Model version
    again = plan(EndpointSpec(name="scaled", backend="vertex", versions=[wider]), backend)
    assert not again, again.diff()


def test_startup_and_health_probes_reach_the_container_spec(
    fake: VertexFake, versions: Versions
) -> None:
    from endpointkit.errors import ValidationError
    from tests.fakes.vertex_support import make_backend

    backend = make_backend(
        fake,
        startup_probe={"period_seconds": 5, "failure_threshold": 120},
        health_probe={"period_seconds": 10, "timeout_seconds": 2},
    )
    try:
        Endpoint.create("probed", versions.echo("v1"), backend=backend)
        spec = fake.models["probed"]["1"]["containerSpec"]
        assert spec["startupProbe"] == {
            "httpGet": {"path": "/health", "port": 8080},
            "periodSeconds": 5,
            "failureThreshold": 120,
        }
        assert spec["healthProbe"]["timeoutSeconds"] == 2
        backend.delete("probed")
        backend.wait_deleted("probed", timeout=60)
    finally:
        backend.close()
    with pytest.raises(ValidationError, match="unknown field"):
        make_backend(fake, startup_probe={"period": 5})
    with pytest.raises(ValidationError, match="positive whole number"):
        make_backend(fake, health_probe={"period_seconds": 0})
