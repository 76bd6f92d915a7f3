"""What every scenario mixin shares: the fixtures, the Versions helper, routing checks and the
capability gates.

A scenario that needs a capability is marked `@needs(Capability.X)`: on a backend without it the
test is skipped with "<backend> lacks <capability>" before any endpoint is created. Its
counterpart, marked `@lacks(Capability.X)`, runs only there and checks that the operation
raises Unsupported, so a declared gap is still tested.
"""

from __future__ import annotations

import itertools
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from endpointkit import Endpoint, VersionSpec
from endpointkit.adapters.base import Backend, Capability
from endpointkit.spec import HealthCheck

MODELS = Path(__file__).parent.parent / "models"
_counter = itertools.count()


def describe(backend: Backend) -> str:
    """The backend's name and class, e.g. "vertex (VertexBackend)": one name can cover classes
    with different capabilities (Vertex shared and dedicated endpoints)."""
    return f"{backend.name} ({type(backend).__name__})"


def require(backend: Backend, capability: Capability) -> None:
    """Skip the running test, naming the capability, unless `backend` has it."""
    if capability not in backend.capabilities:
        pytest.skip(f"{describe(backend)} lacks {capability}")


def require_absent(backend: Backend, capability: Capability) -> None:
    """Skip the running test, naming the capability, if `backend` has it (the test checks what
    a backend without it does)."""
    if capability in backend.capabilities:
        pytest.skip(f"{describe(backend)} has {capability}; this checks backends that lack it")


def needs(capability: Capability) -> pytest.MarkDecorator:
    """Run the scenario only on backends with `capability` (see `require`)."""
    return pytest.mark.needs(capability)


def lacks(capability: Capability) -> pytest.MarkDecorator:
    """Run the scenario only on backends without `capability` (see `require_absent`)."""
    return pytest.mark.lacks(capability)


class Versions:
    """Makes versions backed by real model directories (see models/echo_predictor.py)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def make(self, name: str, mode: str = "echo") -> VersionSpec:
        model_dir = self.root / f"{name}-{mode}"
        if not model_dir.exists():
            model_dir.mkdir(parents=True)
            shutil.copy(MODELS / "echo_predictor.py", model_dir / "echo_predictor.py")
            (model_dir / "answer.txt").write_text(name)
            (model_dir / "mode.txt").write_text(mode)
        return VersionSpec(name=name, model=str(model_dir), predictor="echo_predictor:Echo")

    def echo(self, name: str) -> VersionSpec:
        """Answers every instance with its own name."""
        return self.make(name)

    def rejecting(self, name: str) -> VersionSpec:
        """Deploys fine, then rejects every request as invalid input."""
        return self.make(name, "reject")

    def broken(self, name: str) -> VersionSpec:
        """Fails to load, so its deployment fails."""
        return self.make(name, "broken")

    def slow(self, name: str, load_s: float, health: HealthCheck | None = None) -> VersionSpec:
        """Takes `load_s` seconds to load (see models/slow_predictor.py), then answers like
        `echo`; `health` sets its startup budget."""
        model_dir = self.root / f"{name}-slow-{load_s:g}"
        if not model_dir.exists():
            model_dir.mkdir(parents=True)
            shutil.copy(MODELS / "slow_predictor.py", model_dir / "slow_predictor.py")
            (model_dir / "answer.txt").write_text(name)
            (model_dir / "load_seconds.txt").write_text(f"{load_s:g}")
        return VersionSpec(
            name=name, model=str(model_dir), predictor="slow_predictor:Slow", health=health
        )


class SuiteBase:
    """The fixtures and helpers of the scenario mixins. Subclasses provide `backend`."""

    #: Requests sent when checking a split; enough that a 10% share is all but certain to show.
    ROUTING_SAMPLES = 120

    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError("a backend's test module provides this fixture")

    @pytest.fixture(autouse=True)
    def _capability_gate(self, request: pytest.FixtureRequest, backend: Backend) -> None:
        """Apply the `needs`/`lacks` marks before any endpoint is created."""
        for mark in request.node.iter_markers("needs"):
            require(backend, *mark.args)
        for mark in request.node.iter_markers("lacks"):
            require_absent(backend, *mark.args)

    @pytest.fixture
    def versions(self, tmp_path: Path) -> Versions:
        return Versions(tmp_path / "models")

    @pytest.fixture
    def name(self) -> str:
        return f"conf-{next(_counter)}"

    @pytest.fixture
    def endpoint(self, backend: Backend, versions: Versions, name: str) -> Iterator[Endpoint]:
        ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=120)
        yield ep
        if backend.exists(name):
            backend.delete(name)
            backend.wait_deleted(name, timeout=120)

    def served(self, endpoint: Endpoint, n: int | None = None) -> Counter[str | None]:
        """Send `n` requests; count which version answered each (each answers its own name)."""
        counts: Counter[str | None] = Counter()
        for _ in range(n or self.ROUTING_SAMPLES):
            result = endpoint.predict([[1.0, 2.0]])
            assert result.predictions == [result.version]
            counts[result.version] += 1
        return counts
