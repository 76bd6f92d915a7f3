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
from tests.fakes.vertex_grpc import running_fakes
from tests.fakes.vertex_support import grpc_settings, make_backend


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


class TestVertexDedicatedBackend(BackendSuite):
    """Dedicated public endpoints (`dedicated_endpoint=True`, a VertexDedicatedBackend): the
    Invoke API pins versions and streams, so the scenarios that shared endpoints skip for
    target_version and streaming run here."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[VertexBackend]:
        with VertexFake(tmp_path / "vertex-fake", seed=7) as fake:
            backend = make_backend(fake, dedicated_endpoint=True)
            yield backend
            backend.close()


class TestVertexGrpcBackend(BackendSuite):
    """The same scenarios with transport="grpc": the GAPIC gRPC clients on a plaintext loopback
    channel to the fake's gRPC front end (one state with its REST API, which keeps serving GCS
    and Cloud Logging); invocations use the RawPredict RPC."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[VertexBackend]:
        with running_fakes(tmp_path / "vertex-fake", seed=7) as (fake, front):
            backend = make_backend(fake, **grpc_settings(fake, front.target))
            yield backend
            backend.close()
