"""Vertex AI's documented rules as the adapter meets them: names the service hands back, what
it refuses before and after a change, and what is checked before any call."""

from __future__ import annotations

from endpointkit.adapters.vertex import VertexBackend
from endpointkit.endpoint import Endpoint
from tests.conformance.suite import Versions
from tests.fakes.vertex import VertexFake

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
