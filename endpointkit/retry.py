"""Every retry and wait policy, built from tenacity parts and used by name.

Retries happen only on endpointkit's own `Retryable` errors (throttling, transient faults),
never on SDK types or bare Exception; adapters translate first, then retry. Jitter spreads
clients that were throttled together; waiting for a resource uses plain exponential backoff
because nobody competes for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random_exponential,
)

from endpointkit.errors import Retryable

__all__ = ["control_plane", "invocation", "poll_delays"]

log = logging.getLogger("endpointkit.retry")
T = TypeVar("T")


def control_plane(
    *, attempts: int = 6, deadline_s: float = 120.0, sleep: Callable[[float], None] = time.sleep
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
    *, attempts: int = 3, deadline_s: float = 60.0, sleep: Callable[[float], None] = time.sleep
) -> Retrying:
    """Policy for invocations: fewer, shorter retries (SageMaker's own limit is 60 s a call)."""
    return Retrying(
        retry=retry_if_exception_type(Retryable),
        wait=wait_random_exponential(multiplier=0.1, max=2),
        stop=stop_after_attempt(attempts) | stop_after_delay(deadline_s),
        reraise=True,
        sleep=sleep,
        before_sleep=before_sleep_log(log, logging.DEBUG),
    )


def poll_delays(*, first_s: float = 0.05, max_s: float = 15.0) -> Callable[[RetryCallState], float]:
    """Delay between status polls: exponential from `first_s`, capped at `max_s`."""
    return wait_exponential(multiplier=first_s, min=first_s, max=max_s)


def call_with(policy: Retrying, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn(*args, **kwargs)` under `policy`."""
    return policy(fn, *args, **kwargs)
