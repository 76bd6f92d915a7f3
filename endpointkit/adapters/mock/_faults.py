"""Injected faults: what a test asks to go wrong, and when each fault fires.

A fault fires for the requests (or deployments) it matches until it has fired `times` times.
Latency runs first and may turn into a Timeout; then at most one failure fires per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from endpointkit.errors import ModelError, NotReady, Throttled, Timeout, Unavailable

FaultKind = Literal["throttle", "model_error", "unavailable", "not_ready", "latency", "deploy"]


@dataclass
class Fault:
    """An injected failure. `times=None` repeats forever; endpoint/version None match all."""

    kind: FaultKind
    endpoint: str | None = None
    version: str | None = None
    times: int | None = 1
    status: int = 500
    body: bytes = b'{"error": "injected model error"}'
    seconds: float = 0.0
    reason: str = "injected deployment failure"
    fired: int = 0

    def matches(self, endpoint: str, version: str | None) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        return self.endpoint in (None, endpoint) and self.version in (None, version)


class Faults:
    """The faults injected into one backend, in the order they were added."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def fire(self, endpoint: str, version: str, kinds: tuple[str, ...]) -> Fault | None:
        """The first fault of one of `kinds` that matches, counted as fired; None if none."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.matches(endpoint, version):
                    fault.fired += 1
                    return fault
        return None

    def before_request(
        self,
        endpoint: str,
        version: str,
        timeout: float | None,
        record: Callable[..., None],
        context: dict[str, Any],
        sleep: Callable[[float], None],
    ) -> None:
        """Apply injected latency and failures for one request (raising what they inject)."""
        latency = self.fire(endpoint, version, ("latency",))
        if latency is not None:
            if timeout is not None and latency.seconds > timeout:
                sleep(timeout)
                record(504, error="timeout")
                raise Timeout(
                    f"version {version!r} of {endpoint!r} did not answer within {timeout:g} s.",
                    **context,
                )
            sleep(latency.seconds)
        fault = self.fire(
            endpoint, version, ("throttle", "unavailable", "not_ready", "model_error")
        )
        if fault is not None:
            record(fault.status if fault.kind == "model_error" else 0, error=fault.kind)
            if fault.kind == "throttle":
                raise Throttled(f"endpoint {endpoint!r} is throttled (injected).", **context)
            if fault.kind == "unavailable":
                raise Unavailable(f"endpoint {endpoint!r} is unavailable (injected).", **context)
            if fault.kind == "not_ready":
                raise NotReady(f"endpoint {endpoint!r} is not ready (injected).", **context)
            raise ModelError(
                f"version {version!r} of {endpoint!r} answered {fault.status}.",
                status=fault.status,
                body=fault.body,
                **context,
            )
