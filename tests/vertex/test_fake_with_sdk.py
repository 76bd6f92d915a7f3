"""The fake proven against Google's own high-level SDK (`google.cloud.aiplatform`), so its wire
behaviour is not only what our adapter expects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.suite import Versions
from tests.fakes.vertex import VertexFake

BUCKET = "endpointkit-staging"


@pytest.fixture
def aiplatform(fake: VertexFake) -> Iterator[Any]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform
    from google.cloud.aiplatform import initializer

    aiplatform.init(
        project=fake.project,
        location=fake.location,
        api_endpoint=fake.url,
        api_transport="rest",
        credentials=AnonymousCredentials(),
    )
    yield aiplatform
    initializer.global_config = initializer._Config()  # the SDK keeps global settings


def _stage(fake: VertexFake, model_dir: Path, prefix: str) -> str:
    """Put a model directory into the fake's GCS (the SDK stages only through real GCS)."""
    target = fake.gcs_root / BUCKET / prefix
    for path in model_dir.iterdir():
        target.mkdir(parents=True, exist_ok=True)
        (target / path.name).write_bytes(path.read_bytes())
    return f"gs://{BUCKET}/{prefix}"


def test_sdk_upload_create_deploy_predict_split_undeploy(
    fake: VertexFake, aiplatform: Any, versions: Versions
) -> None:
    def upload(name: str, parent: str | None = None) -> Any:
        version = versions.echo(name)
        return aiplatform.Model.upload(
            display_name="sdk-model",
            parent_model=parent,
            artifact_uri=_stage(fake, Path(version.model or ""), f"sdk/{name}"),
            serving_container_image_uri="us-docker.pkg.dev/p/endpointkit/serving:latest",
            serving_container_predict_route="/predict",
            serving_container_health_route="/health",
            serving_container_environment_variables={
                "ENDPOINTKIT_PREDICTOR": "echo_predictor:Echo"
            },
            version_aliases=[name],
        )

    v1 = upload("v1")
    assert v1.version_id == "1"
    endpoint = aiplatform.Endpoint.create(display_name="sdk-endpoint")
    v1.deploy(endpoint=endpoint, machine_type="n1-standard-2", deployed_model_display_name="v1")
    prediction = endpoint.predict(instances=[[1, 2]])
    assert prediction.predictions == ["v1"]
    first_id = prediction.deployed_model_id

    v2 = upload("v2", parent=v1.resource_name)
    assert v2.version_id == "2"
    v2.deploy(
        endpoint=endpoint,
        machine_type="n1-standard-2",
        traffic_percentage=10,
        deployed_model_display_name="v2",
    )
    endpoint = aiplatform.Endpoint(endpoint.resource_name)
    second_id = next(d.id for d in endpoint.list_models() if d.display_name == "v2")
    assert endpoint.traffic_split == {first_id: 90, second_id: 10}

    endpoint.update(traffic_split={first_id: 50, second_id: 50})
    assert endpoint.traffic_split == {first_id: 50, second_id: 50}
    answers = {endpoint.predict(instances=[[1]]).predictions[0] for _ in range(40)}
    assert answers == {"v1", "v2"}

    endpoint.undeploy(deployed_model_id=first_id)  # the SDK moves v1's traffic to v2 first
    assert endpoint.traffic_split == {second_id: 100}
    endpoint.undeploy_all()
    endpoint.delete()
    aiplatform.Model(v1.resource_name).delete()
    assert fake.endpoints == {}
    assert fake.models == {}
    assert not fake.live_processes()
