"""Fixtures for the Vertex backend tests: a fake per test, a backend on it, model directories."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("google.cloud.aiplatform_v1", reason="needs endpointkit[vertex]")

from endpointkit.adapters.vertex import VertexBackend
from tests.conformance.suite import MODELS, Versions
from tests.fakes.vertex import VertexFake
from tests.fakes.vertex_support import make_backend

HERE = Path(__file__).parent


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[VertexFake]:
    threads_before = set(threading.enumerate())
    with VertexFake(tmp_path / "vertex-fake", seed=3) as fake:
        yield fake
    assert not fake.live_processes(), "the fake left serving processes running"
    leaked = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert not [t for t in leaked if t.name.startswith("endpointkit-vertex")], leaked


@pytest.fixture
def backend(fake: VertexFake) -> Iterator[VertexBackend]:
    backend = make_backend(fake)
    yield backend
    backend.close()


@pytest.fixture
def versions(tmp_path: Path) -> Versions:
    return Versions(tmp_path / "models")


@pytest.fixture
def identity_model(tmp_path: Path) -> Path:
    """A model directory whose predictor returns each instance unchanged."""
    model_dir = tmp_path / "identity-model"
    model_dir.mkdir()
    shutil.copy(HERE / "identity_predictor.py", model_dir / "identity_predictor.py")
    return model_dir


__all__ = ["MODELS"]
