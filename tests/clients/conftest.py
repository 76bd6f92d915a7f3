"""Fixtures for the client tests: one local gateway per module, and each cloud's own client
built exactly as its documentation shows, with only the address and credentials changed."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from tests.conformance.suite import Versions
from tests.local.harness import local_backend

_names = itertools.count()

PROJECT, LOCATION = "demo", "us-central1"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    """A LocalBackend with its own state folder and gateway, shared by one test module."""
    with local_backend(tmp_path_factory.mktemp("clients-home"), seed=3) as backend:
        yield backend


@pytest.fixture
def versions(tmp_path: Path) -> Versions:
    return Versions(tmp_path / "models")


@pytest.fixture
def make_endpoint(local: LocalBackend) -> Iterator[Callable[..., Endpoint]]:
    """make_endpoint(*version_specs, traffic=None) -> an InService endpoint, deleted after."""
    created: list[str] = []

    def make(*specs: Any, traffic: dict[str, int] | None = None) -> Endpoint:
        name = f"cli-{next(_names)}"
        created.append(name)
        ep = Endpoint.create(name, specs[0], backend=local, timeout=60)
        for spec in specs[1:]:
            ep.deploy(spec, traffic=0, timeout=60)
        if traffic is not None:
            ep.set_traffic(traffic, timeout=60)
        return ep

    yield make
    for name in created:
        if local.exists(name):
            local.delete(name)
            local.wait_deleted(name, timeout=60)


def endpoint_path(name: str) -> str:
    return f"projects/{PROJECT}/locations/{LOCATION}/endpoints/{name}"


def prediction_client(url: str, credentials: Any = None, transport: str = "rest") -> Any:
    """`aiplatform_v1.PredictionServiceClient` as Google's samples build it, pointed at `url`."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1

    return aiplatform_v1.PredictionServiceClient(
        client_options=ClientOptions(api_endpoint=url),
        transport=transport,
        credentials=credentials or AnonymousCredentials(),
    )
