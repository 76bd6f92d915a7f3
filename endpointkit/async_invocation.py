"""Queued (asynchronous) invocations: the handle `Endpoint.invoke_async` returns, and what one
look at a queued request finds.

```python
job = ep.invoke_async(body, inference_id="order-42")   # returns once the request is queued
job.status()                                          # Queued, InProgress, Completed, Failed
job.result(timeout=300).json()                        # waits (retry.poll_until), then reads
result = await job                                    # the same from async code
```

A request is identified by its endpoint and inference id. Queuing the same id again is
idempotent: nothing new is queued and the handle of the first request comes back (with
`duplicate=True`), so a client may retry `invoke_async` freely. Where the answer will be is known
at once (`output_location`, and `failure_location` where the platform writes failures apart).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from endpointkit.errors import EndpointKitError, Timeout
from endpointkit.invocation import InvokeResult
from endpointkit.retry import apoll_until, poll_until

if TYPE_CHECKING:
    from endpointkit.adapters.base import Backend

__all__ = ["AsyncInvocation", "AsyncOutcome", "InvocationStatus"]

#: How long `result()` waits by default: SageMaker lets one asynchronous request run an hour.
DEFAULT_RESULT_TIMEOUT_S = 3600.0


class InvocationStatus(str, Enum):
    """Where a queued request is. Platforms that cannot tell queued from running (SageMaker)
    report Queued until the answer is written."""

    QUEUED = "Queued"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"  # the model refused it, or it failed every attempt (dead-lettered)

    def __str__(self) -> str:
        return self.value

    @property
    def done(self) -> bool:
        return self in (InvocationStatus.COMPLETED, InvocationStatus.FAILED)


@dataclass(frozen=True)
class AsyncOutcome:
    """One look at a queued request: its status, and once done its answer or its error."""

    status: InvocationStatus
    result: InvokeResult | None = None  # when Completed
    error: EndpointKitError | None = None  # when Failed: usually a ModelError with the body
    attempts: int | None = None  # deliveries to the model so far, where the platform counts


@dataclass(frozen=True)
class AsyncInvocation:
    """A queued request on one backend. `status()` looks once; `result()` waits for the answer
    (`await invocation` in async code). Build one for a known id with
    `Endpoint.invocation(inference_id)`."""

    backend: Backend = field(repr=False, compare=False)
    endpoint: str
    inference_id: str
    #: Where the answer will be written (s3://, file://, or the mock's mock://).
    output_location: str
    #: Where a failure will be written, when the platform writes failures apart.
    failure_location: str | None = None
    #: True when this id was queued before: nothing new was queued.
    duplicate: bool = False

    def outcome(self) -> AsyncOutcome:
        """Look once: the status, and the answer or error when done."""
        return self.backend.async_outcome(self)

    def status(self) -> InvocationStatus:
        return self.outcome().status

    def done(self) -> bool:
        """True once the answer (or the failure) is written."""
        return self.outcome().status.done

    def result(self, timeout: float = DEFAULT_RESULT_TIMEOUT_S) -> InvokeResult:
        """Wait until the request is done and return its answer.

        Raises what the request failed with (ModelError carrying the model's status and body,
        or the platform's error for a request it gave up on), and Timeout naming the last
        status seen when `timeout` seconds pass first.
        """
        backend = self.backend
        outcome = poll_until(
            self.outcome,
            lambda seen: seen.status.done,
            timeout=timeout,
            expired=self._expired(timeout),
            first_s=backend.async_poll_first_s,
            max_s=backend.async_poll_max_s,
            sleep=backend.sleep,
            clock=backend.clock,
        )
        return self._finish(outcome)

    async def aresult(self, timeout: float = DEFAULT_RESULT_TIMEOUT_S) -> InvokeResult:
        """`result` for async code: each look runs in a worker thread, and the waits between
        looks are `asyncio.sleep` (or the backend's injected sleep)."""
        backend = self.backend

        async def fetch() -> AsyncOutcome:
            return await asyncio.to_thread(self.outcome)

        outcome = await apoll_until(
            fetch,
            lambda seen: seen.status.done,
            timeout=timeout,
            expired=self._expired(timeout),
            first_s=backend.async_poll_first_s,
            max_s=backend.async_poll_max_s,
            sleep=_async_sleep(backend.sleep),
            clock=backend.clock,
        )
        return self._finish(outcome)

    def __await__(self) -> Generator[Any, None, InvokeResult]:
        return self.aresult().__await__()

    def _finish(self, outcome: AsyncOutcome) -> InvokeResult:
        if outcome.status is InvocationStatus.FAILED:
            if outcome.error is not None:
                raise outcome.error
            raise EndpointKitError(  # a backend that reports Failed always says why
                f"asynchronous request {self.inference_id} to {self.endpoint!r} failed.",
                backend=self.backend.name,
                operation="invoke_async",
                endpoint=self.endpoint,
            )
        if outcome.result is None:
            raise EndpointKitError(
                f"asynchronous request {self.inference_id} to {self.endpoint!r} completed "
                "without an answer.",
                backend=self.backend.name,
                operation="invoke_async",
                endpoint=self.endpoint,
            )
        return outcome.result

    def _expired(self, timeout: float) -> Callable[[AsyncOutcome], Exception]:
        def expired(last: AsyncOutcome) -> Exception:
            return Timeout(
                f"asynchronous request {self.inference_id} to {self.endpoint!r} was still "
                f"{last.status} after {timeout:g} s (its answer will be at "
                f"{self.output_location}).",
                last_status=str(last.status),
                hint="Wait longer, or look later with "
                f"'endpointkit result {self.inference_id} --endpoint {self.endpoint}'.",
                backend=self.backend.name,
                operation="invoke_async",
                endpoint=self.endpoint,
            )

        return expired

    def __rich_repr__(self) -> Any:
        yield "endpoint", self.endpoint
        yield "inference_id", self.inference_id
        yield "output_location", self.output_location
        yield "failure_location", self.failure_location, None
        yield "duplicate", self.duplicate, False


def _async_sleep(sleep: Callable[[float], None]) -> Callable[[float], Awaitable[None]]:
    """`time.sleep` becomes `asyncio.sleep`; an injected sleep (a test's) is called as given."""
    if sleep is time.sleep:
        return asyncio.sleep

    async def nap(seconds: float) -> None:
        sleep(seconds)

    return nap
