"""The SageMaker backend end to end: real boto3 against moto's server plus the filled gaps,
with real serving processes answering every invocation."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.sagemaker import SageMakerBackend
from endpointkit.errors import DeploymentFailed, ModelError, NotFound
from endpointkit.invocation import InvokeRequest
from tests.conformance.suite import Versions
from tests.fakes.sagemaker import FakeSageMaker
from tests.sagemaker.conftest import leftovers

pytestmark = pytest.mark.slow


def served(endpoint: Endpoint, n: int) -> Counter[str | None]:
    return Counter(endpoint.predict([[1.0]]).version for _ in range(n))


def live_variants(fake: FakeSageMaker, name: str) -> dict[str, dict[str, float]]:
    described = fake.client("sagemaker").describe_endpoint(EndpointName=name)
    return {
        v["VariantName"]: {
            "weight": v.get("CurrentWeight"),
            "instances": v.get("CurrentInstanceCount"),
        }
        for v in described.get("ProductionVariants", [])
    }


def test_create_canary_shift_promote_undeploy_delete_leaves_nothing(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    sm = fake.client("sagemaker")
    described = sm.describe_endpoint(EndpointName=name)
    tags = {
        t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=described["EndpointArn"])["Tags"]
    }
    assert tags["managed-by"] == "endpointkit"
    assert tags["endpointkit:history"].endswith(f"endpointkit/{name}/history.json")
    model = sm.describe_model(ModelName=f"{name}-v1-{versions.echo('v1').spec_hash}")
    assert model["PrimaryContainer"]["ModelDataUrl"].endswith("/model.tar.gz")
    assert model["PrimaryContainer"]["Environment"]["ENDPOINTKIT_VERSION"] == "v1"

    state = ep.deploy(versions.echo("v2"), traffic=10, timeout=60)
    assert state.traffic.serving() == {"v1": 90, "v2": 10}
    weights = live_variants(fake, name)
    assert weights["v2"]["weight"] / (weights["v1"]["weight"] + weights["v2"]["weight"]) == (
        pytest.approx(0.10)
    )
    counts = served(ep, 100)
    assert counts["v1"] > counts["v2"] > 0

    ep.set_traffic({"v1": 50, "v2": 50}, timeout=60)
    assert {v: w["weight"] for v, w in live_variants(fake, name).items()} == {
        "v1": 50.0,
        "v2": 50.0,
    }
    ep.promote("v2", timeout=60)
    assert set(served(ep, 10)) == {"v2"}
    state = ep.undeploy("v1", timeout=60)
    assert state.version_names == ["v2"]
    assert set(live_variants(fake, name)) == {"v2"}

    kinds = [e.kind for e in ep.history()]
    assert kinds == ["created", "deployed", "deployed", "traffic", "traffic", "undeployed"]
    ep.delete()
    backend.wait_deleted(name, timeout=60)
    assert leftovers(fake, name) == {"endpoints": [], "configs": [], "models": [], "artifacts": []}
    assert backend.history(name)[-1].kind == "deleted"  # the history outlives the endpoint
    assert not [c for c in fake.running() if c.endpoint == name]


def test_superseded_configs_and_models_are_cleaned_up_keeping_one_for_rollback(
    fake: FakeSageMaker,
    versions: Versions,
    make_backend: Callable[..., SageMakerBackend],
    name: str,
) -> None:
    backend = make_backend(keep_configs=2)
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    ep.deploy(versions.echo("v2"), traffic=50, timeout=60)
    ep.promote("v2", timeout=60)
    ep.undeploy("v1", timeout=60)
    ep.status()  # settles the pending change: cleanup runs once SageMaker is done
    left = leftovers(fake, name)
    assert len(left["configs"]) == 2  # the live one and the one before it
    assert sorted(m.split("-")[-2] for m in left["models"]) == ["v1", "v2"]  # v1 for rollback


def test_deploy_keeps_live_weights_and_autoscaled_instance_counts(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    ep.deploy(versions.echo("v2"), traffic=30, timeout=60)
    fake.set_instance_count(name, "v1", 3)  # what Application Auto Scaling does under load
    before = live_variants(fake, name)
    state = ep.deploy(versions.echo("v3"), traffic=0, timeout=60)
    after = live_variants(fake, name)
    assert state.traffic.serving() == {"v1": 70, "v2": 30}
    assert after["v1"] == before["v1"] == {"weight": before["v1"]["weight"], "instances": 3}
    assert after["v2"] == before["v2"]
    assert after["v3"] == {"weight": 0.0, "instances": 1}
    assert state.version("v1").replicas == 3  # type: ignore[union-attr]

    # The control: without RetainAllVariantProperties, SageMaker (and the fake) reset the
    # variants to the config's initial values; that is what the adapter avoids.
    config = fake.client("sagemaker").describe_endpoint(EndpointName=name)["EndpointConfigName"]
    fake.client("sagemaker").update_endpoint(EndpointName=name, EndpointConfigName=config)
    backend.wait(name, timeout=60)
    assert live_variants(fake, name)["v1"]["instances"] == 1


def test_failed_deploy_reports_reason_and_logs_and_keeps_serving(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    with pytest.raises(DeploymentFailed) as caught:
        ep.deploy(versions.broken("v2"), traffic=10, timeout=60)
    error = caught.value
    assert "production variant v2 did not pass the ping health check" in error.reason
    assert f"/aws/sagemaker/Endpoints/{name}" in error.log_hint
    assert "stream v2/" in error.log_hint
    assert "cannot load weights" in error.log_hint
    assert error.version == "v2"
    state = ep.status()
    assert state.version_names == ["v1"]
    assert state.traffic.serving() == {"v1": 100}
    assert set(served(ep, 5)) == {"v1"}
    failed = [e for e in ep.history() if e.kind == "failed"]
    assert failed
    assert failed[-1].version == "v2"
    assert "ping health check" in failed[-1].message
    left = leftovers(fake, name)  # the failed config and model are not kept for rollback
    assert len(left["configs"]) == 1
    assert [m.split("-")[-2] for m in left["models"]] == ["v1"]
    # The endpoint takes the next deploy as usual.
    assert ep.deploy(versions.echo("v3"), traffic=50, timeout=60).traffic.serving() == {
        "v1": 50,
        "v3": 50,
    }


def test_failed_create_leaves_a_failed_endpoint_that_can_be_deleted(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    with pytest.raises(DeploymentFailed, match="ping health check") as caught:
        Endpoint.create(name, versions.broken("v1"), backend=backend, timeout=60)
    assert "cannot load weights" in str(caught.value)
    assert backend.get(name).raw_status == "Failed"
    backend.delete(name)
    backend.wait_deleted(name, timeout=60)
    assert leftovers(fake, name) == {"endpoints": [], "configs": [], "models": [], "artifacts": []}


def test_model_error_keeps_the_original_status_and_message(
    backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    ep = Endpoint.create(name, versions.rejecting("v1"), backend=backend, timeout=60)
    with pytest.raises(ModelError) as caught:
        ep.predict([[1.0]])
    error = caught.value
    assert error.provider_code == "ModelError"
    assert error.status is not None
    assert 400 <= error.status < 500
    assert "rejects every input" in error.body_excerpt
    assert f"log-group:/aws/sagemaker/Endpoints/{name}:log-stream:v1/" in error.message
    assert error.endpoint == name


def test_invoke_pins_a_version_and_passes_sagemaker_headers(
    backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    ep.deploy(versions.echo("v2"), traffic=0, timeout=60)
    assert {ep.predict([[1.0]], version="v2").version for _ in range(5)} == {"v2"}
    result = backend.invoke(
        InvokeRequest(
            name,
            b'{"instances": [[1.0], [2.0]]}',
            accept="application/json",
            version="v1",
            custom_attributes="trace=abc",
            inference_id="req-1",
        )
    )
    assert result.version == "v1"
    assert result.json() == {"predictions": ["v1", "v1"]}
    assert result.headers["x-amzn-invoked-production-variant"] == "v1"
    with pytest.raises(NotFound, match="v9"):
        ep.predict([[1.0]], version="v9")
    with pytest.raises(NotFound, match="not found"):
        backend.invoke(InvokeRequest("sm-never-created", b"{}"))


def test_response_stream_yields_the_answer_in_parts(
    backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    body = b'{"instances": [[1.0], [2.0], [3.0]]}'
    parts = list(backend.invoke_stream(InvokeRequest(name, body, accept="application/json")))
    assert len(parts) > 1
    assert b"".join(parts) == b'{"predictions":["v1","v1","v1"]}'


def test_history_lives_in_s3_and_another_process_settles_a_change_it_did_not_start(
    fake: FakeSageMaker,
    make_backend: Callable[..., SageMakerBackend],
    versions: Versions,
    name: str,
) -> None:
    first = make_backend()
    Endpoint.create(name, versions.echo("v1"), backend=first, timeout=60)
    first.deploy(name, versions.echo("v2"), 20)  # started, not waited for (--no-wait)

    second = make_backend()  # e.g. a later `endpointkit status` in another process
    second.wait(name, timeout=60)
    events = second.history(name)
    assert [e.kind for e in events] == ["created", "deployed", "deployed"]
    assert events[-1].version == "v2"
    assert events[-1].traffic_after == {"v1": 80, "v2": 20}

    arn = fake.client("sagemaker").describe_endpoint(EndpointName=name)["EndpointArn"]
    tags = fake.client("sagemaker").list_tags(ResourceArn=arn)["Tags"]
    location = next(t["Value"] for t in tags if t["Key"] == "endpointkit:history")
    bucket, _, key = location.removeprefix("s3://").partition("/")
    document = json.loads(fake.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert [e["kind"] for e in document["events"]] == ["created", "deployed", "deployed"]
    assert document["pending"] == []


def test_data_capture_is_configured_when_asked(
    fake: FakeSageMaker,
    make_backend: Callable[..., SageMakerBackend],
    versions: Versions,
    name: str,
) -> None:
    backend = make_backend(data_capture=True, data_capture_percent=20)
    Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    sm = fake.client("sagemaker")
    config = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    )
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 20
    assert capture["DestinationS3Uri"].endswith(f"endpointkit/{name}/data-capture")
