"""Fixtures for the SageMaker backend's own tests: moto's server with its gaps filled
(tests/fakes/sagemaker.py), a backend pointed at it, and real model directories."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from endpointkit.adapters.sagemaker import SageMakerBackend
from tests.conformance.suite import Versions
from tests.fakes.sagemaker import FakeSageMaker, shared_fake

_names = itertools.count()


@pytest.fixture(scope="module")
def fake(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeSageMaker]:
    """The session's fake (stopped, with every serving process, when the session ends);
    each module checks that its tests left no endpoint serving."""
    running = shared_fake(request.config, tmp_path_factory.mktemp("fake-sagemaker"))
    before = {c.endpoint for c in running.running()}
    yield running
    left = {c.endpoint for c in running.running()} - before
    assert not left, f"endpoints still serving after the module: {left}"


@pytest.fixture
def make_backend(fake: FakeSageMaker) -> Iterator[Callable[..., SageMakerBackend]]:
    made: list[SageMakerBackend] = []

    def make(**settings: Any) -> SageMakerBackend:
        backend = SageMakerBackend(**fake.settings(sleep=lambda _: None, **settings))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def backend(make_backend: Callable[..., SageMakerBackend]) -> SageMakerBackend:
    return make_backend()


@pytest.fixture
def versions(tmp_path: Path) -> Versions:
    return Versions(tmp_path / "models")


@pytest.fixture
def name(fake: FakeSageMaker, backend: SageMakerBackend) -> Iterator[str]:
    """A fresh endpoint name; the endpoint is deleted after the test if it still exists."""
    endpoint = f"sm-{next(_names)}"
    yield endpoint
    if backend.exists(endpoint):
        backend.delete(endpoint)
        backend.wait_deleted(endpoint, timeout=60)


def leftovers(fake: FakeSageMaker, endpoint: str) -> dict[str, list[str]]:
    """SageMaker resources (and uploaded artifacts) still there for `endpoint`."""
    sm = fake.client("sagemaker")
    s3 = fake.client("s3")
    found = {
        "endpoints": [
            e["EndpointName"]
            for e in sm.list_endpoints()["Endpoints"]
            if e["EndpointName"] == endpoint
        ],
        "configs": [
            c["EndpointConfigName"]
            for c in sm.list_endpoint_configs()["EndpointConfigs"]
            if c["EndpointConfigName"].startswith(f"{endpoint}-")
        ],
        "models": [
            m["ModelName"]
            for m in sm.list_models()["Models"]
            if m["ModelName"].startswith(f"{endpoint}-")
        ],
    }
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    found["artifacts"] = [
        f"{bucket}/{o['Key']}"
        for bucket in buckets
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"endpointkit/{endpoint}/").get(
            "Contents", []
        )
        if not o["Key"].endswith("history.json")
    ]
    return found
