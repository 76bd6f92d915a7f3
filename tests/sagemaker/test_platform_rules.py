"""SageMaker's documented rules, enforced before any call, and what a refused call leaves
behind (issue 15)."""

from __future__ import annotations

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.sagemaker import SageMakerBackend
from endpointkit.errors import NotFound, QuotaExceeded
from tests.conformance.suite import Versions
from tests.fakes.sagemaker import FakeSageMaker
from tests.sagemaker.conftest import leftovers

pytestmark = pytest.mark.slow

NOTHING = {"endpoints": [], "configs": [], "models": [], "artifacts": []}


def test_a_refused_create_endpoint_leaves_nothing_and_delete_removes_leftovers(
    fake: FakeSageMaker, backend: SageMakerBackend, versions: Versions, name: str
) -> None:
    fake.inject("CreateEndpoint", "ResourceLimitExceeded")
    with pytest.raises(QuotaExceeded):
        Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    assert leftovers(fake, name) == NOTHING  # the model, config and model.tar.gz are undone

    # The undo itself is refused: the error says what is left, and delete() removes it.
    fake.inject("CreateEndpoint", "ResourceLimitExceeded")
    denied = fake.inject("DeleteModel", "AccessDeniedException", times=None)
    try:
        with pytest.raises(QuotaExceeded, match="delete"):
            Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=60)
    finally:
        denied.times = 0
    assert leftovers(fake, name)["models"]
    backend.delete(name)
    assert leftovers(fake, name) == NOTHING
    with pytest.raises(NotFound):
        backend.delete(name)  # nothing left: a plain NotFound again
