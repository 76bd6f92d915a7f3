"""Google's high-level SDK (`google.cloud.aiplatform`) against the local gateway, as its
documentation shows: `aiplatform.init(...)` then `aiplatform.Endpoint(name).predict(...)`; only
`api_endpoint`, `api_transport="rest"` and the credentials differ from the cloud."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform
from google.cloud.aiplatform import initializer

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from tests.clients.conftest import LOCATION, PROJECT, endpoint_path
from tests.conformance.suite import Versions

pytestmark = pytest.mark.slow  # real processes and sockets


@pytest.fixture
def sdk(local: LocalBackend) -> Iterator[None]:
    """`aiplatform.init` pointed at the gateway; the SDK's global config is reset after."""
    aiplatform.init(
        project=PROJECT,
        location=LOCATION,
        api_endpoint=local.gateway_url(),
        api_transport="rest",
        credentials=AnonymousCredentials(),
    )
    yield
    initializer.global_config.__init__()  # type: ignore[misc]  # back to a fresh config


def test_sdk_endpoint_reads_the_split_and_predicts(
    make_endpoint: Callable[..., Endpoint], versions: Versions, sdk: None
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.echo("v2"), traffic={"v1": 100, "v2": 0})
    endpoint = aiplatform.Endpoint(endpoint_path(ep.name))
    assert endpoint.traffic_split == {"v1": 100, "v2": 0} or endpoint.traffic_split == {"v1": 100}
    assert sorted(m.id for m in endpoint.list_models()) == ["v1", "v2"]
    prediction = endpoint.predict(instances=[[1.0, 2.0], [3.0, 4.0]])
    assert prediction.predictions == ["v1", "v1"]
    assert prediction.deployed_model_id == "v1"
    by_id = aiplatform.Endpoint(ep.name)  # the bare id, with project and location from init
    assert by_id.predict(instances=[[1.0]]).predictions == ["v1"]
    deployed = endpoint.list_models()[1]
    model = aiplatform.Model(deployed.model, version=deployed.model_version_id)
    assert model.version_id == "v2"


def test_sdk_errors_are_api_core_exceptions(sdk: None) -> None:
    with pytest.raises(exceptions.NotFound, match="nope"):
        aiplatform.Endpoint(endpoint_path("nope")).predict(instances=[[1.0]])
    with pytest.raises(exceptions.MethodNotImplemented, match="local"):
        aiplatform.Endpoint.create(display_name="made-by-the-sdk")
