"""Fixtures for the local backend's own tests: a gateway per module, always stopped after."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from tests.conformance.suite import Versions
from tests.local.harness import local_backend

_names = itertools.count()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    """A LocalBackend with its own state folder and gateway, shared by one test module."""
    with local_backend(tmp_path_factory.mktemp("local-home"), seed=3) as backend:
        yield backend


@pytest.fixture
def versions(tmp_path: Path) -> Versions:
    return Versions(tmp_path / "models")


@pytest.fixture
def make_endpoint(local: LocalBackend) -> Iterator[Callable[..., Endpoint]]:
    """make_endpoint(*version_specs, traffic=None) -> an InService endpoint, deleted after."""
    created: list[str] = []

    def make(*specs: object, traffic: dict[str, int] | None = None) -> Endpoint:
        name = f"loc-{next(_names)}"
        created.append(name)
        ep = Endpoint.create(name, specs[0], backend=local, timeout=60)  # type: ignore[arg-type]
        for spec in specs[1:]:
            ep.deploy(spec, traffic=0, timeout=60)  # type: ignore[arg-type]
        if traffic is not None:
            ep.set_traffic(traffic, timeout=60)
        return ep

    yield make
    for name in created:
        if local.exists(name):
            local.delete(name)
            local.wait_deleted(name, timeout=60)
