"""Asynchronous inference: queue a request, read its answer (or its failure) from where the
backend wrote it, idempotently by inference id; backends without it raise Unsupported."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from endpointkit import AsyncEndpoint, Endpoint, InvocationStatus, VersionSpec
from endpointkit.adapters.base import Backend, Capability
from endpointkit.errors import ModelError, NotFound, Unsupported
from endpointkit.spec import AsyncInference
from tests.conformance.scenarios.base import SuiteBase, Versions, lacks, needs

BODY = json.dumps({"instances": [[1.0], [2.0]]}).encode()


class AsyncScenarios(SuiteBase):
    @pytest.fixture
    def async_inference(self, tmp_path: Path) -> AsyncInference | None:
        """The `async_inference` section the scenarios deploy with (None: none). Backends
        whose results live elsewhere (SageMaker: s3://) override this."""
        return AsyncInference(
            output_path=f"file://{tmp_path}/async-out",
            failure_path=f"file://{tmp_path}/async-failures",
        )

    @pytest.fixture
    def async_endpoint(
        self,
        backend: Backend,
        versions: Versions,
        name: str,
        async_inference: AsyncInference | None,
    ) -> Iterator[Endpoint]:
        """An endpoint whose v1 (echo) is deployed with `async_inference`."""
        ep = Endpoint.create(
            name, self.asynchronous(versions.echo("v1"), async_inference), backend=backend
        )
        yield ep
        if backend.exists(name):
            backend.delete(name)
            backend.wait_deleted(name, timeout=120)

    @staticmethod
    def asynchronous(version: VersionSpec, section: AsyncInference | None) -> VersionSpec:
        return version.model_copy(update={"async_inference": section})

    @needs(Capability.ASYNC_INFERENCE)
    def test_invoke_async(self, async_endpoint: Endpoint) -> None:
        job = async_endpoint.invoke_async(BODY, inference_id="conf-job-1")
        assert job.inference_id == "conf-job-1"
        assert job.output_location
        assert not job.duplicate
        result = job.result(timeout=60)
        assert result.json() == {"predictions": ["v1", "v1"]}
        assert job.status() is InvocationStatus.COMPLETED
        # Idempotent by inference id: the same id queues nothing new and says where the first
        # request's answer is.
        again = async_endpoint.invoke_async(BODY, inference_id="conf-job-1")
        assert again.duplicate
        assert again.output_location == job.output_location
        assert again.result(timeout=60).json() == result.json()
        # Another process finds it by id.
        found = async_endpoint.invocation("conf-job-1")
        assert found.output_location == job.output_location
        with pytest.raises(NotFound):
            async_endpoint.invocation("never-queued")
        # Without an id, one is made up.
        assert async_endpoint.invoke_async(BODY).inference_id

    @needs(Capability.ASYNC_INFERENCE)
    def test_invoke_async_from_async_code(self, async_endpoint: Endpoint, backend: Backend) -> None:
        async def run() -> list[object]:
            twin = AsyncEndpoint(async_endpoint.name, backend)
            jobs = [await twin.invoke_async(BODY, inference_id=f"conf-aio-{i}") for i in range(3)]
            return [(await job).json() for job in jobs]

        assert asyncio.run(run()) == [{"predictions": ["v1", "v1"]}] * 3

    @needs(Capability.ASYNC_INFERENCE)
    def test_invoke_async_failure_is_reported(
        self,
        backend: Backend,
        versions: Versions,
        name: str,
        async_inference: AsyncInference | None,
    ) -> None:
        ep = Endpoint.create(
            name, self.asynchronous(versions.rejecting("v1"), async_inference), backend=backend
        )
        try:
            job = ep.invoke_async(BODY, inference_id="conf-fail-1")
            with pytest.raises(ModelError) as caught:
                job.result(timeout=60)
            assert "rejects every input" in caught.value.body_excerpt
            assert job.status() is InvocationStatus.FAILED
        finally:
            backend.delete(name)
            backend.wait_deleted(name, timeout=120)

    @lacks(Capability.ASYNC_INFERENCE)
    def test_invoke_async_is_unsupported(self, endpoint: Endpoint, backend: Backend) -> None:
        with pytest.raises(Unsupported, match=backend.name) as caught:
            endpoint.invoke_async(BODY)
        assert caught.value.operation == "invoke_async"
        assert endpoint.predict([[1.0]]).predictions == ["v1"]  # plain invocations still work
