"""The mock's asynchronous inference: injectable delay and failures, retries and dead letters,
idempotency by inference id; and the contract's checks before anything is queued."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from endpointkit import AsyncEndpoint, Endpoint, InvocationStatus, VersionSpec
from endpointkit.adapters.base import Capability
from endpointkit.adapters.mock import MockBackend
from endpointkit.errors import (
    ModelError,
    NotFound,
    PayloadTooLarge,
    SettingIgnoredWarning,
    Throttled,
    Timeout,
    Unsupported,
)
from endpointkit.spec import AsyncInference


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def double(instances: list[float]) -> list[float]:
    return [x * 2 for x in instances]


@pytest.fixture
def clock() -> Clock:
    return Clock()


def mock(clock: Clock, **settings: object) -> MockBackend:
    backend = MockBackend(sleep=clock.sleep, clock=clock, **settings)  # type: ignore[arg-type]
    backend.add_endpoint("scores", {"v1": double})
    return backend


def test_a_queued_request_answers_after_the_injected_delay(clock: Clock) -> None:
    backend = mock(clock, async_delay_s=30.0)
    ep = Endpoint("scores", backend=backend)
    job = ep.invoke_async(b'{"instances": [1, 2]}', inference_id="j1")
    assert job.status() is InvocationStatus.QUEUED
    assert backend.calls_to("scores") == []  # nothing ran yet
    clock.now += 29.0
    assert not job.done()
    clock.now += 1.0
    assert job.result(timeout=1).json() == {"predictions": [2, 4]}
    assert len(backend.calls_to("scores")) == 1
    assert job.output_location == "mock://scores/async/j1.out"


def test_result_times_out_naming_the_last_status(clock: Clock) -> None:
    job = Endpoint("scores", backend=mock(clock, async_delay_s=60.0)).invoke_async(b"[1]")
    with pytest.raises(Timeout, match="still Queued after 5 s") as caught:
        job.result(timeout=5)
    assert caught.value.last_status == "Queued"


def test_polls_and_run_queued(clock: Clock) -> None:
    backend = mock(clock, async_polls=2)
    job = Endpoint("scores", backend=backend).invoke_async(b'{"instances": [3]}')
    assert [job.status(), job.status()] == [InvocationStatus.QUEUED] * 2
    assert job.status() is InvocationStatus.COMPLETED
    other = Endpoint("scores", backend=backend).invoke_async(b'{"instances": [4]}')
    assert backend.run_queued() == 1  # run_queued ignores the polls, not the delay
    assert other.outcome().result is not None


def test_same_inference_id_queues_once(clock: Clock) -> None:
    backend = mock(clock)
    ep = Endpoint("scores", backend=backend)
    first = ep.invoke_async(b'{"instances": [1]}', inference_id="same")
    again = ep.invoke_async(b'{"instances": [9]}', inference_id="same")
    assert again.duplicate
    assert not first.duplicate
    assert again.result(timeout=1).json() == {"predictions": [2]}  # the first body's answer
    assert first.result(timeout=1).json() == {"predictions": [2]}
    assert len(backend.calls_to("scores")) == 1
    assert ep.invocation("same").output_location == first.output_location
    with pytest.raises(NotFound):
        ep.invocation("other")


def test_injected_model_error_fails_the_request(clock: Clock) -> None:
    backend = mock(clock)
    backend.inject("model_error", status=422, body=b'{"error": "bad row"}')
    job = Endpoint("scores", backend=backend).invoke_async(b'{"instances": [1]}')
    with pytest.raises(ModelError) as caught:
        job.result(timeout=1)
    assert caught.value.status == 422
    assert "bad row" in caught.value.body_excerpt
    assert job.outcome().status is InvocationStatus.FAILED
    assert job.outcome().attempts == 1


def test_transient_failures_are_retried_then_dead_lettered(clock: Clock) -> None:
    backend = mock(clock, async_attempts=3)
    backend.inject("throttle", times=2)
    ok = Endpoint("scores", backend=backend).invoke_async(b'{"instances": [1]}')
    assert ok.result(timeout=1).json() == {"predictions": [2]}
    assert ok.outcome().attempts == 3
    backend.inject("unavailable", times=None)
    dead = Endpoint("scores", backend=backend).invoke_async(b'{"instances": [1]}')
    with pytest.raises(Exception, match="unavailable"):
        dead.result(timeout=1)
    assert dead.outcome().attempts == 3
    backend.clear_faults()
    backend.inject("throttle", times=None)
    with pytest.raises(Throttled):
        Endpoint("scores", backend=backend).invoke_async(b"[1]").result(timeout=1)


def test_async_twin_awaits_the_answer(clock: Clock) -> None:
    backend = mock(clock, async_polls=3)

    async def run() -> object:
        ep = AsyncEndpoint("scores", backend=backend)
        job = await ep.invoke_async(b'{"instances": [5]}', inference_id="aio")
        assert (await ep.invocation("aio")).inference_id == "aio"
        return (await job).json()

    assert asyncio.run(run()) == {"predictions": [10]}


def test_checks_before_queuing(clock: Clock) -> None:
    backend = mock(clock)
    ep = Endpoint("scores", backend=backend)
    with pytest.raises(NotFound):
        Endpoint("missing", backend=backend).invoke_async(b"[1]")
    with pytest.raises(PayloadTooLarge, match="Nothing was sent"):
        ep.invoke_async(b"x" * (7 * 1024 * 1024))
    backend.max_async_payload_bytes = 8 * 1024 * 1024  # SageMaker-like: larger when queued
    ep.invoke_async(b"x" * (7 * 1024 * 1024))


def test_like_vertex_is_unsupported_and_points_to_batch_prediction() -> None:
    backend = MockBackend(like="vertex")
    assert Capability.ASYNC_INFERENCE not in backend.capabilities
    backend.add_endpoint("scores", {"v1": double})
    with pytest.raises(Unsupported, match="batch prediction") as caught:
        Endpoint("scores", backend=backend).invoke_async(b"[1]")
    assert "mock (like vertex)" in str(caught.value)
    with pytest.raises(Unsupported):
        Endpoint("scores", backend=backend).invocation("x")


def test_vertex_backend_declares_the_reason() -> None:
    pytest.importorskip("google.cloud.aiplatform_v1")
    from endpointkit.adapters.vertex import VertexBackend

    assert Capability.ASYNC_INFERENCE not in VertexBackend.capabilities
    assert "BatchPredictionJob" in VertexBackend.unsupported_reasons[Capability.ASYNC_INFERENCE]


def test_twins_share_the_invoke_async_signature() -> None:
    sync = inspect.signature(Endpoint.invoke_async)
    twin = inspect.signature(AsyncEndpoint.invoke_async)
    assert sync == twin
    assert "inference_id" in sync.parameters
    assert Endpoint.invoke_async.__doc__ == AsyncEndpoint.invoke_async.__doc__


def test_sagemaker_only_async_settings_warn_and_requests_still_answer(clock: Clock) -> None:
    backend = MockBackend(sleep=clock.sleep, clock=clock)
    backend.register("v1", double)
    spec = VersionSpec(
        name="v1",
        resources={"max_replicas": 2},  # type: ignore[arg-type]
        async_inference=AsyncInference(
            output_path="s3://bucket/out",
            success_topic="arn:aws:sns:us-east-1:123456789012:done",
            scale_to_zero=True,
        ),
    )
    with pytest.warns(SettingIgnoredWarning) as caught:
        ep = Endpoint.create("jobs", spec, backend=backend)
    # only ours: a ResourceWarning from an unrelated object collected meanwhile may be caught too
    (warning,) = [w for w in caught if issubclass(w.category, SettingIgnoredWarning)]
    assert "async_inference success_topic, scale_to_zero of version 'v1'" in str(warning.message)
    assert "the mock backend sends no SNS notifications" in str(warning.message)
    assert warning.filename == __file__  # points at the caller's line
    assert ep.invoke_async(b'{"instances": [1]}').result(timeout=5).json() == {"predictions": [2]}
