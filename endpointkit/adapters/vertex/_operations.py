"""Changes that run in the background, and the long-running operations they wait on.

Vertex AI has no endpoint status: a deploy is an UploadModel and a DeployModel operation that
take minutes. Each change runs in its own thread (`Operations.start`); while it runs, the
endpoint reports Creating/Updating/Deleting with the step it is on (`running`), so the base
`Backend.wait` polls `get` like any other backend's. A failure is kept (`failure`) for `get`
to report and recorded in the endpoint's history. Long-running operations are polled with
`poll_until` (the backend's one waiting policy), each poll under the control-plane retry.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from endpointkit.adapters.vertex._clients import Connection
from endpointkit.adapters.vertex._errors import BACKEND
from endpointkit.errors import DeploymentFailed, EndpointKitError, Timeout
from endpointkit.state import Status

__all__ = ["Operations", "Pending"]

_APPLIED = object()  # a retried change found in place already


class _Poll(Protocol):
    def __call__(
        self,
        fetch: Callable[[], bool],
        done: Callable[[bool], bool],
        *,
        timeout: float,
        expired: Callable[[bool], Exception],
    ) -> bool: ...


class _Record(Protocol):
    def __call__(
        self, name: str, kind: str, *, version: str | None = None, message: str = ""
    ) -> None: ...


@dataclass
class Pending:
    """A change running in the background: the status to report and how far it got."""

    status: Status
    action: str
    future: concurrent.futures.Future[None]
    step: str = ""

    def describe(self) -> str:
        """The raw status to report, e.g. "Updating: deploy: operation projects/.../1"."""
        return f"{self.status.value}: {self.step or self.action}"


class Operations:
    """This process's background changes, one at a time per endpoint."""

    def __init__(
        self, conn: Connection, *, record: _Record, poll: _Poll, lro_timeout_s: float
    ) -> None:
        self._conn = conn
        self._record = record
        self._poll = poll
        self.lro_timeout_s = lro_timeout_s
        self._lock = threading.RLock()
        self._pending: dict[str, Pending] = {}
        self._failures: dict[str, str] = {}
        self._threads: list[threading.Thread] = []

    def start(self, name: str, status: Status, action: str, work: Callable[[], None]) -> None:
        """Run `work` in its own thread: it ends with the change, so nothing idles afterwards,
        and (not a daemon) it lets a change finish if the program exits without waiting."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()

        def target() -> None:
            future.set_running_or_notify_cancel()
            try:
                self._run(name, action, work)
            finally:
                future.set_result(None)

        thread = threading.Thread(target=target, name=f"endpointkit-vertex {action}")
        with self._lock:
            self._failures.pop(name, None)
            self._pending[name] = Pending(status=status, action=action, future=future)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _run(self, name: str, action: str, work: Callable[[], None]) -> None:
        try:
            work()
        except DeploymentFailed as exc:
            with self._lock:
                self._failures[name] = exc.reason or exc.message
        except EndpointKitError as exc:
            with self._lock:
                self._failures[name] = f"{action} failed: {exc}"
            self._record(name, "failed", version=exc.version, message=self._failures[name])
        except Exception as exc:  # never lose a background failure silently
            with self._lock:
                self._failures[name] = f"{action} failed unexpectedly: {exc!r}"
            self._record(name, "failed", message=self._failures[name])

    def running(self, name: str, status: Status | None = None) -> Pending | None:
        """The change running on `name` in this process (of `status`, if given), or None."""
        pending = self._pending.get(name)
        if pending is None or pending.future.done():
            return None
        return pending if status is None or pending.status is status else None

    def failure(self, name: str) -> str | None:
        """Why this process's last change on `name` failed, or None."""
        return self._failures.get(name)

    def clear_failure(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)

    def join(self, name: str, status: Status, timeout: float) -> str | None:
        """Block until this process's `status` change on `name` ends (at most `timeout` s);
        returns its failure, or None if it succeeded, is still running or there was none."""
        pending = self._pending.get(name)
        if pending is None or pending.status is not status:
            return None
        done, _ = concurrent.futures.wait([pending.future], timeout=timeout)
        return self._failures.get(name) if done else None

    def set_step(self, name: str | None, step: str) -> None:
        pending = self._pending.get(name or "")
        if pending is not None:
            pending.step = step

    def wait(
        self, op: Any, operation: str, endpoint: str | None, version: str | None = None
    ) -> Any:
        """The result of a GAPIC long-running operation, polled until it is done; Timeout
        after `lro_timeout_s` (the operation keeps running on Vertex AI)."""
        self.set_step(endpoint, f"{operation}: operation {getattr(op.operation, 'name', '')}")

        def expired(_: bool) -> Timeout:
            return Timeout(
                f"{operation} on {endpoint!r} ({BACKEND}) did not finish within "
                f"{self.lro_timeout_s:g} s.",
                hint="Raise lro_timeout_s; the operation keeps running on Vertex AI.",
                backend=BACKEND,
                operation=operation,
                endpoint=endpoint,
                version=version,
            )

        def done() -> bool:
            return bool(self._conn.call(operation, op.done, endpoint=endpoint, version=version))

        self._poll(done, bool, timeout=self.lro_timeout_s, expired=expired)
        with self._conn.errors(operation, endpoint, version):
            return op.result()

    def run(
        self,
        client: str,
        method: str,
        request: dict[str, Any],
        *,
        operation: str,
        endpoint: str | None,
        version: str | None = None,
        done: Callable[[], bool] | None = None,
    ) -> Any:
        """Start a long-running GAPIC call (`client.method(**request)`, retried on transient
        errors) and return its operation's result once it is done (None if `done` found it
        done already).

        `done` says whether the change is in place: before a retry it is asked first, so a
        call whose answer was lost after it took effect (an error, or a connection dropped
        mid-call) is checked, not sent again.
        """

        def applied() -> Any:
            return _APPLIED if done is not None and done() else None

        op = self._conn.call(
            operation,
            lambda: getattr(self._conn.client(client), method)(
                **request, retry=None, timeout=self._conn.call_timeout_s
            ),
            endpoint=endpoint,
            version=version,
            recheck=applied if done is not None else None,
        )
        if op is _APPLIED:
            return None
        return self.wait(op, operation, endpoint, version)

    def close(self) -> None:
        """Wait for every running change to end."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join()
