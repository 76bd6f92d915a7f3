"""The Vertex AI backend in the shared scenario suite: the real aiplatform_v1 GAPIC clients
(REST transport, anonymous credentials) against tests/fakes/vertex.py, whose deployed models are
real serving processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("google.cloud.aiplatform_v1", reason="needs endpointkit[vertex]")

from endpointkit.adapters.vertex import VertexBackend
from tests.conformance.suite import BackendSuite
from tests.fakes.vertex import VertexFake
from tests.fakes.vertex_support import make_backend


class TestVertexBackend(BackendSuite):
    @pytest.fixture
    def fake(self, tmp_path: Path) -> Iterator[VertexFake]:
        with VertexFake(tmp_path / "vertex-fake", seed=7) as fake:
            yield fake

    @pytest.fixture
    def backend(self, fake: VertexFake) -> Iterator[VertexBackend]:
        backend = make_backend(fake)
        yield backend
        backend.close()
