"""The SageMaker backend in the shared scenario suite: real boto3 against moto's server, with
moto's gaps filled by tests/fakes/sagemaker.py and real serving processes answering."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from endpointkit.adapters.sagemaker import SageMakerBackend
from endpointkit.spec import AsyncInference
from tests.conformance.suite import BackendSuite
from tests.fakes.sagemaker import FakeSageMaker, shared_fake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fake(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeSageMaker]:
    """The session's fake; stopped with all its serving processes when the session ends."""
    running = shared_fake(request.config, tmp_path_factory.mktemp("fake-sagemaker"))
    before = {c.endpoint for c in running.running()}
    yield running
    left = {c.endpoint for c in running.running()} - before
    assert not left, f"endpoints still serving after the module: {left}"


class TestSageMakerBackend(BackendSuite):
    @pytest.fixture
    def backend(self, fake: FakeSageMaker, tmp_path: Path) -> Iterator[SageMakerBackend]:
        backend = SageMakerBackend(**fake.settings(sleep=lambda _: None))
        yield backend
        backend.close()

    @pytest.fixture
    def async_inference(self, fake: FakeSageMaker) -> AsyncInference:
        """SageMaker writes asynchronous answers to S3 (a bucket per test)."""
        bucket = f"conf-async-{next(_buckets)}"
        fake.client("s3").create_bucket(Bucket=bucket)
        return AsyncInference(
            output_path=f"s3://{bucket}/out", failure_path=f"s3://{bucket}/failures"
        )


_buckets = itertools.count()
