"""Every retry and wait policy, built from tenacity parts and used by name.

Retries happen only on endpointkit's own `Retryable` errors (throttling, transient faults),
never on SDK types or bare Exception; adapters translate first, then retry. Jitter spreads
clients that were throttled together; waiting for a resource (`poll_until`) uses plain
exponential backoff because nobody competes for it (`apoll_until` is its asyncio twin).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from endpointkit.errors import Retryable

__all__ = [
    "Clock",
    "Sleep",
    "apoll_until",
    "async_invocation",
    "control_plane",
    "invocation",
    "poll_until",
]

log = logging.getLogger("endpointkit.retry")
T = TypeVar("T")
Sleep = Callable[[float], None]
Clock = Callable[[], float]


def control_plane(
    *, attempts: int = 6, deadline_s: float = 120.0, sleep: Sleep = time.sleep
) -> Retrying:
    """Policy for control-plane calls: jittered exponential backoff on Retryable errors."""
    return Retrying(
        retry=retry_if_exception_type(Retryable),
        wait=wait_random_exponential(multiplier=0.5, max=20),
        stop=stop_after_attempt(attempts) | stop_after_delay(deadline_s),
        reraise=True,
        sleep=sleep,
        before_sleep=before_sleep_log(log, logging.INFO),
    )


def invocation(
    *, attempts: int = 3, deadline_s: float = 60.0, sleep: Sleep = time.sleep
) -> Retrying:
    """Policy for invocations: fewer, shorter retries (SageMaker's own limit is 60 s a call)."""
    return Retrying(
        retry=retry_if_exception_type(Retryable),
        wait=_INVOCATION_WAIT,
        stop=stop_after_attempt(attempts) | stop_after_delay(deadline_s),
        reraise=True,
        sleep=sleep,
        before_sleep=before_sleep_log(log, logging.DEBUG),
    )


def async_invocation(
    *, attempts: int = 3, deadline_s: float = 60.0, sleep: Sleep = time.sleep
) -> AsyncRetrying:
    """`invocation` for coroutines. `time.sleep` becomes `asyncio.sleep`; any other `sleep`
    (a test's recorder) is called as given, so both twins take the same injection."""
    nap: Callable[[float], Awaitable[None]]
    if sleep is time.sleep:
        nap = asyncio.sleep
    else:

        async def nap(seconds: float) -> None:
            sleep(seconds)

    return AsyncRetrying(
        retry=retry_if_exception_type(Retryable),
        wait=_INVOCATION_WAIT,
        stop=stop_after_attempt(attempts) | stop_after_delay(deadline_s),
        reraise=True,
        sleep=nap,
        before_sleep=before_sleep_log(log, logging.DEBUG),
    )


_INVOCATION_WAIT = wait_random_exponential(multiplier=0.1, max=2)


def poll_until(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    expired: Callable[[T], Exception],
    first_s: float = 0.05,
    max_s: float = 15.0,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> T:
    """Call `fetch()` until `done(result)` holds and return that result: the one way
    endpointkit waits for a state (endpoint settled or deleted, operation done, result
    written, process ready).

    Delays grow exponentially from `first_s` to `max_s` and never overshoot the deadline;
    `fetch` is called once more at the deadline. When `timeout` seconds pass first, raises
    `expired(last result)`, so the error can name the last status seen. Exceptions from
    `fetch` propagate at once (retrying errors is the other policies' job).
    """
    policy = Retrying(sleep=sleep, **_polling(done, timeout, expired, first_s, max_s, clock))
    return policy(fetch)


async def apoll_until(
    fetch: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout: float,
    expired: Callable[[T], Exception],
    first_s: float = 0.05,
    max_s: float = 15.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Clock = time.monotonic,
) -> T:
    """`poll_until` for coroutines: awaits `fetch()` and sleeps with `asyncio.sleep` (or the
    given coroutine function); same delays, deadline and `expired` error."""

    async def attempt() -> T:  # tenacity awaits only `async def` functions, not lambdas
        return await fetch()

    policy = AsyncRetrying(sleep=sleep, **_polling(done, timeout, expired, first_s, max_s, clock))
    result: T = await policy(attempt)
    return result


def _polling(
    done: Callable[[T], bool],
    timeout: float,
    expired: Callable[[T], Exception],
    first_s: float,
    max_s: float,
    clock: Clock,
) -> dict[str, Any]:
    """The tenacity parts both pollers share; the deadline starts now."""
    deadline = clock() + timeout

    def delay(state: RetryCallState) -> float:
        grown: float = first_s * 2.0 ** (state.attempt_number - 1)
        return max(0.0, min(grown, max_s, deadline - clock()))

    def stop(state: RetryCallState) -> bool:
        return clock() >= deadline

    def give_up(state: RetryCallState) -> T:
        if state.outcome is None:  # tenacity gives up only after an attempt
            raise RuntimeError("poll_until gave up before fetching anything")
        raise expired(state.outcome.result())

    return {
        "retry": retry_if_result(lambda value: not done(value)),
        "wait": delay,
        "stop": stop,
        "retry_error_callback": give_up,
    }
