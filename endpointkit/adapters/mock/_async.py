"""The mock's asynchronous inference: queued requests held in memory, run when a look finds
them due, so a test decides exactly when an answer appears.

A request queued with `invoke_async` stays Queued for the backend's `async_polls` looks and
until `async_delay_s` seconds have passed on its clock (both injectable); the look after that
runs it through the same path as `invoke` (routing, handlers, recorded calls, injected faults).
Retryable failures (injected throttling, unavailability, not-ready) leave it queued for the
next look, up to `async_attempts` deliveries; then it fails with the last error, as a
dead-lettered request does. A model error fails it at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from endpointkit.async_invocation import AsyncInvocation, AsyncOutcome, InvocationStatus
from endpointkit.errors import EndpointKitError, NotFound, Retryable
from endpointkit.invocation import InvokeRequest, InvokeResult
from endpointkit.spec import AsyncInference

__all__ = ["AsyncJobs"]


@dataclass
class _Job:
    request: InvokeRequest
    invocation: AsyncInvocation
    queued_at: float
    looks: int = 0
    attempts: int = 0
    status: InvocationStatus = InvocationStatus.QUEUED
    result: InvokeResult | None = None
    error: EndpointKitError | None = None

    def outcome(self) -> AsyncOutcome:
        return AsyncOutcome(self.status, self.result, self.error, self.attempts)


class AsyncJobs:
    """Every queued request of one MockBackend, by (endpoint, inference id)."""

    def __init__(
        self,
        lock: threading.RLock,
        *,
        polls: int,
        delay_s: float,
        attempts: int,
        clock: Callable[[], float],
        spec_of: Callable[[str], AsyncInference | None],
    ) -> None:
        """`spec_of(endpoint)`: the endpoint's async_inference section, if a version has one
        (where the handles say answers go)."""
        self._lock = lock
        self.spec_of = spec_of
        self.polls = polls
        self.delay_s = delay_s
        self.attempts = max(1, attempts)
        self._clock = clock
        self._jobs: dict[tuple[str, str], _Job] = {}

    def queue(
        self, request: InvokeRequest, make: Callable[[str, str | None], AsyncInvocation]
    ) -> AsyncInvocation:
        """Queue `request` (its inference id is set) unless the id is known; `make(output,
        failure)` builds the handle."""
        assert request.inference_id is not None  # Backend.invoke_async sets it
        key = (request.endpoint, request.inference_id)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                first = job.invocation
                return AsyncInvocation(
                    first.backend,
                    first.endpoint,
                    first.inference_id,
                    first.output_location,
                    first.failure_location,
                    duplicate=True,
                )
            invocation = make(*self._locations(request))
            self._jobs[key] = _Job(request, invocation, self._clock())
            return invocation

    def find(self, endpoint: str, inference_id: str, backend: str) -> AsyncInvocation:
        with self._lock:
            job = self._jobs.get((endpoint, inference_id))
        if job is None:
            raise NotFound(
                f"no asynchronous request {inference_id!r} was queued on {endpoint!r}.",
                hint="Check the inference id that invoke_async returned.",
                backend=backend,
                operation="result",
                endpoint=endpoint,
            )
        return job.invocation

    def look(
        self, invocation: AsyncInvocation, run: Callable[[InvokeRequest], InvokeResult]
    ) -> AsyncOutcome:
        """One look: run the request if it is due, then report it."""
        with self._lock:
            job = self._jobs.get((invocation.endpoint, invocation.inference_id))
            if job is None:
                raise NotFound(
                    f"no asynchronous request {invocation.inference_id!r} was queued on "
                    f"{invocation.endpoint!r}.",
                    backend=invocation.backend.name,
                    operation="result",
                    endpoint=invocation.endpoint,
                )
            job.looks += 1
            if job.status.done or not self._due(job):
                return job.outcome()
            self._run(job, run)
            return job.outcome()

    def run_due(self, run: Callable[[InvokeRequest], InvokeResult]) -> int:
        """Run every queued request that is due now; returns how many finished."""
        finished = 0
        with self._lock:
            for job in list(self._jobs.values()):
                if not job.status.done and self._due(job, counting_looks=False):
                    self._run(job, run)
                    finished += job.status.done
        return finished

    def _due(self, job: _Job, *, counting_looks: bool = True) -> bool:
        waited = self._clock() - job.queued_at >= self.delay_s
        return waited and (not counting_looks or job.looks > self.polls)

    def _run(self, job: _Job, run: Callable[[InvokeRequest], InvokeResult]) -> None:
        job.attempts += 1
        try:
            job.result = run(job.request)
        except Retryable as exc:
            if job.attempts >= self.attempts:
                job.status, job.error = InvocationStatus.FAILED, exc
            return  # stays queued: the next look delivers it again
        except EndpointKitError as exc:
            job.status, job.error = InvocationStatus.FAILED, exc
            return
        job.status = InvocationStatus.COMPLETED

    def _locations(self, request: InvokeRequest) -> tuple[str, str | None]:
        spec = self.spec_of(request.endpoint)
        name = request.inference_id
        if spec is None:
            return f"mock://{request.endpoint}/async/{name}.out", None
        failure = spec.failure_path.rstrip("/") if spec.failure_path else None
        return (
            f"{spec.output_path.rstrip('/')}/{name}.out",
            f"{failure}/{name}-error.out" if failure else None,
        )
