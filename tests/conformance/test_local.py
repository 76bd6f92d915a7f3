"""The local backend (real gateway daemon, real serving processes) in the shared suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from endpointkit.adapters.local import LocalBackend
from tests.conformance.suite import BackendSuite
from tests.local.harness import local_backend

pytestmark = pytest.mark.slow  # real processes and sockets


@pytest.fixture(scope="module")
def shared_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    """One gateway for the whole module (started once), stopped with every process after."""
    home: Path = tmp_path_factory.mktemp("local-conformance")
    with local_backend(home, seed=7) as backend:
        yield backend


class TestLocalBackend(BackendSuite):
    @pytest.fixture
    def backend(self, shared_local: LocalBackend) -> LocalBackend:
        return shared_local
