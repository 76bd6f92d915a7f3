"""The consumer loop: receive, invoke, store, then delete; the source and sink protocols.

One main thread receives (never more messages than there are free slots, so nothing waits
invisible in a buffer), one daemon thread per message invokes and stores, and one heartbeat
thread extends the visibility of every message still in flight. A message is deleted only
after its result (or its error) is stored; everything else leaves it on the queue.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote

from endpointkit.errors import (
    EndpointKitError,
    MissingDependency,
    ModelError,
    NotFound,
    PermissionDenied,
    Retryable,
    Unsupported,
    ValidationError,
)
from endpointkit.invocation import JSON, InvokeResult

if TYPE_CHECKING:
    from endpointkit.endpoint import Endpoint

__all__ = [
    "Consumer",
    "Event",
    "Message",
    "Report",
    "Sink",
    "Source",
    "result_key",
]

log = logging.getLogger("endpointkit.consume")

#: Message attributes the consumer reads (all optional, all strings).
ATTRIBUTES = ("ContentType", "Accept", "InferenceId", "CustomAttributes", "TargetVersion")
_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=-]{0,199}")


@dataclass(frozen=True)
class Message:
    """One received message: its id, the request body, its attributes, and how many times the
    queue has delivered it (this delivery included). `handle` is the source's own token (an
    SQS receipt handle, an open file)."""

    id: str
    body: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    receive_count: int = 1
    handle: Any = field(default=None, repr=False, compare=False)


def result_key(message: Message) -> str:
    """Where the message's result is stored: its InferenceId attribute when given, else its
    message id; anything but letters, digits and `._=-` is percent-encoded, so a key never
    names a folder."""
    raw = message.attributes.get("InferenceId") or message.id
    return raw if _SAFE_KEY.fullmatch(raw) else quote(raw, safe="")


class Source(Protocol):
    """A queue. Every method may raise EndpointKitError (already translated)."""

    description: str

    def receive(self, max_messages: int, wait_s: float, visibility_s: float) -> list[Message]:
        """Up to `max_messages` messages, each hidden from other consumers for `visibility_s`
        seconds; waits up to `wait_s` for the first one (long polling)."""

    def extend(self, messages: Sequence[Message], visibility_s: float) -> None:
        """Hide `messages` for another `visibility_s` seconds from now (the heartbeat)."""

    def release(self, message: Message, delay_s: float) -> None:
        """Give the message back: visible again to every consumer after `delay_s` seconds."""

    def delete(self, message: Message) -> None:
        """Remove the message for good (called only once its outcome is stored)."""

    def close(self) -> None: ...


class Sink(Protocol):
    """Where results go: `<key>.out` for answers, `<key>.error` for failures (JSON)."""

    description: str

    def stored(self, key: str) -> str | None:
        """The location of the result or error already stored under `key`, or None."""

    def write_result(self, key: str, result: InvokeResult, message: Message) -> str:
        """Store the answer whole (never a partial object); return its location."""

    def write_error(self, key: str, error: Mapping[str, Any], message: Message) -> str:
        """Store the failure as JSON; return its location."""

    def close(self) -> None: ...


Outcome = Literal["stored", "error", "skipped", "retry", "released"]


@dataclass(frozen=True)
class Event:
    """What happened to one message. `stored`: the answer was written, the message deleted;
    `error`: the failure was written, the message deleted (the model refused it, or it failed
    on its last allowed delivery); `skipped`: its outcome was already stored (a redelivery),
    the message deleted without invoking; `retry`: it failed transiently and is back on the
    queue after a backoff; `released`: the consumer stopped before finishing it, and it is back
    on the queue."""

    outcome: Outcome
    message_id: str
    key: str
    location: str | None = None
    receive_count: int = 1
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "message_id": self.message_id,
            "key": self.key,
            "location": self.location,
            "receive_count": self.receive_count,
            "error": self.error,
        }


@dataclass
class Report:
    """Counts for one run, and why it stopped: "signal", "max-messages", "idle", or "fatal"
    (then `fatal` holds the error that stopped it)."""

    received: int = 0
    stored: int = 0
    error: int = 0
    skipped: int = 0
    retry: int = 0
    released: int = 0
    stopped_by: str = ""
    fatal: BaseException | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "stored": self.stored,
            "error": self.error,
            "skipped": self.skipped,
            "retry": self.retry,
            "released": self.released,
            "stopped_by": self.stopped_by,
        }


# What a failed invoke means for its message.
_PERMANENT = (ValidationError,)  # the request itself is wrong: no delivery will succeed
_FATAL = (NotFound, PermissionDenied, Unsupported, MissingDependency)  # wrong for every message


def _kind(exc: BaseException) -> Literal["permanent", "fatal", "transient"]:
    if isinstance(exc, ModelError) and exc.status is not None and 400 <= exc.status < 500:
        return "permanent"  # the model refused this request (4xx); 5xx may pass next time
    if isinstance(exc, _PERMANENT):
        return "permanent"
    if isinstance(exc, _FATAL):
        return "fatal"
    return "transient"


def _error_doc(exc: BaseException, message: Message, key: str) -> dict[str, Any]:
    if isinstance(exc, EndpointKitError):
        detail = exc.context()
    else:
        detail = {"error": type(exc).__name__, "message": str(exc)}
    return {
        **detail,
        "message_id": message.id,
        "key": key,
        "receive_count": message.receive_count,
        "failed_at": datetime.now(timezone.utc).isoformat(),
    }


@dataclass
class _InFlight:
    message: Message
    extended_at: float
    released: bool = False  # given back on stop: the worker must not delete it any more


class Consumer:
    """Reads messages from `source`, sends each to `endpoint`, stores the answer in `sink`,
    and deletes the message only once its answer (or error) is stored.

    Delivery is at least once and results are idempotent: a message whose result is already
    stored (a redelivery after a crash between the write and the delete) is deleted without
    invoking the endpoint again. `run()` returns a Report when `stop()` is called (from a
    signal handler, say), after `max_messages` messages, or after `idle_exit_s` seconds with
    nothing received; messages still in flight are finished first, for up to `drain_s`
    seconds, and whatever is left then is released back to the queue.

    `max_receives`: a message that fails transiently on this delivery or later gets an
    `.error` result and is deleted (a poison message); None leaves every such message to the
    queue's own redrive policy (its dead-letter queue). Requests the model refuses (4xx) and
    invalid requests get an `.error` result at once. Errors that would fail every message
    (endpoint not found, permission denied) stop the consumer: the message goes back to the
    queue and `Report.fatal` holds the error.
    """

    def __init__(
        self,
        source: Source,
        endpoint: Endpoint,
        sink: Sink,
        *,
        concurrency: int = 4,
        visibility_s: float = 30.0,
        wait_s: float = 10.0,
        max_messages: int | None = None,
        idle_exit_s: float | None = None,
        max_receives: int | None = 5,
        drain_s: float = 25.0,
        content_type: str = JSON,
        accept: str | None = None,
        invoke_timeout: float | None = None,
        on_event: Callable[[Event], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency < 1:
            raise ValidationError(f"concurrency must be at least 1, got {concurrency}.")
        if visibility_s < 1:
            raise ValidationError(
                f"the visibility timeout must be at least 1 second, got {visibility_s:g}."
            )
        if getattr(source, "root", None) is not None and getattr(source, "root", None) == getattr(
            sink, "root", None
        ):
            raise ValidationError(
                "the queue folder and the results folder are the same: results would be "
                "consumed as requests.",
                hint="Write results to another folder.",
            )
        self.source = source
        self.endpoint = endpoint
        self.sink = sink
        self.concurrency = concurrency
        self.visibility_s = visibility_s
        self.wait_s = wait_s
        self.max_messages = max_messages
        self.idle_exit_s = idle_exit_s
        self.max_receives = max_receives
        self.drain_s = drain_s
        self.content_type = content_type
        self.accept = accept
        self.invoke_timeout = invoke_timeout
        self.on_event = on_event
        self.clock = clock
        self.report = Report()
        self._stop = threading.Event()
        self._done = threading.Event()  # drained: the heartbeat ends
        self._lock = threading.Condition()
        self._in_flight: dict[str, _InFlight] = {}
        self._threads: list[threading.Thread] = []

    # -- control -------------------------------------------------------------------------------

    def stop(self, reason: str = "signal") -> None:
        """Stop receiving; run() finishes what is in flight and returns. Safe from a signal
        handler and from any thread."""
        if not self.report.stopped_by:
            self.report.stopped_by = reason
        self._stop.set()
        with self._lock:
            self._lock.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> Report:
        """Consume until stopped (see the class docstring); returns the counts."""
        heartbeat = threading.Thread(target=self._heartbeat, name="consume-heartbeat", daemon=True)
        heartbeat.start()
        try:
            self._receive_loop()
        finally:
            self._stop.set()
            self._drain()
            self._done.set()
            heartbeat.join(timeout=5)
        return self.report

    # -- the receiving loop ----------------------------------------------------------------------

    def _receive_loop(self) -> None:
        last_seen = self.clock()
        failures = 0
        while not self._stop.is_set():
            free = self._wait_for_slot()
            if free == 0:
                break  # stopping
            room = free
            if self.max_messages is not None:
                room = min(room, self.max_messages - self.report.received)
                if room <= 0:
                    self._wait_idle()
                    self.stop("max-messages")
                    break
            wait = self.wait_s
            if self.idle_exit_s is not None:
                left = self.idle_exit_s - (self.clock() - last_seen)
                if left <= 0 and not self._busy():
                    self.stop("idle")
                    break
                wait = max(0.0, min(wait, left))
            try:
                messages = self.source.receive(min(room, 10), wait, self.visibility_s)
            except Retryable as exc:  # the queue is throttling or briefly unreachable
                failures += 1
                delay = min(2.0**failures, 30.0)
                log.warning("receiving failed (%s); trying again in %g s", exc, delay)
                self._stop.wait(delay)
                continue
            failures = 0
            if self._stop.is_set():
                for message in messages:  # taken during the stop: straight back to the queue
                    with self._lock:
                        self.report.received += 1
                    self._give_back(message, "consumer stopping")
                break
            if messages or self._busy():
                last_seen = self.clock()
            for message in messages:
                self._start(message)

    def _wait_for_slot(self) -> int:
        """Free slots (at least one), or 0 once stopping."""
        with self._lock:
            while len(self._in_flight) >= self.concurrency and not self._stop.is_set():
                self._lock.wait(timeout=1.0)
            return 0 if self._stop.is_set() else self.concurrency - len(self._in_flight)

    def _wait_idle(self) -> None:
        with self._lock:
            while self._in_flight and not self._stop.is_set():
                self._lock.wait(timeout=1.0)

    def _busy(self) -> bool:
        with self._lock:
            return bool(self._in_flight)

    def _start(self, message: Message) -> None:
        with self._lock:
            self.report.received += 1
            self._in_flight[message.id] = _InFlight(message, self.clock())
        # Daemon threads: a stop that gives up on a stuck invoke must not wait for it at exit.
        worker = threading.Thread(
            target=self._handle, args=(message,), name=f"consume-{message.id[:12]}", daemon=True
        )
        self._threads.append(worker)
        worker.start()

    # -- one message -----------------------------------------------------------------------------

    def _handle(self, message: Message) -> None:
        key = result_key(message)
        try:
            self._process(message, key)
        except Exception as exc:  # a sink or queue failure: the message stays on the queue
            log.warning("message %s: %s; it stays on the queue", message.id, exc)
            self._retry(message, key, exc)
        finally:
            with self._lock:
                self._in_flight.pop(message.id, None)
                self._lock.notify_all()

    def _process(self, message: Message, key: str) -> None:
        already = self.sink.stored(key)
        if already is not None:
            self._finish(message, Event("skipped", message.id, key, already, message.receive_count))
            return
        try:
            result = self._invoke(message)
        except Exception as exc:
            kind = _kind(exc)
            if kind == "fatal":
                self._give_back(message, str(exc))
                if self.report.fatal is None:
                    self.report.fatal = exc
                self.stop("fatal")
                return
            poisoned = self.max_receives is not None and message.receive_count >= self.max_receives
            if kind == "transient" and not poisoned:
                self._retry(message, key, exc)
                return
            location = self.sink.write_error(key, _error_doc(exc, message, key), message)
            self._finish(
                message, Event("error", message.id, key, location, message.receive_count, str(exc))
            )
            return
        location = self.sink.write_result(key, result, message)
        self._finish(message, Event("stored", message.id, key, location, message.receive_count))

    def _invoke(self, message: Message) -> InvokeResult:
        attributes = message.attributes
        result: InvokeResult = self.endpoint.invoke(
            message.body,
            content_type=attributes.get("ContentType") or self.content_type,
            accept=attributes.get("Accept") or self.accept,
            version=attributes.get("TargetVersion"),
            custom_attributes=attributes.get("CustomAttributes"),
            inference_id=attributes.get("InferenceId") or message.id,
            timeout=self.invoke_timeout,
        )
        return result

    def _finish(self, message: Message, event: Event) -> None:
        """The outcome is stored: delete the message (unless a stop already gave it back)."""
        with self._lock:
            entry = self._in_flight.get(message.id)
            if entry is not None and entry.released:
                return  # another consumer may hold it now; its result is stored either way
        self.source.delete(message)
        self._count(event)

    def _retry(self, message: Message, key: str, exc: BaseException) -> None:
        delay = float(min(2 ** max(message.receive_count - 1, 0), 60, self.visibility_s))
        try:
            self.source.release(message, delay)
        except Exception as again:  # its visibility lapses instead: still not lost
            log.warning(
                "message %s could not be released (%s); it reappears later", message.id, again
            )
        self._count(Event("retry", message.id, key, None, message.receive_count, str(exc)))

    def _give_back(self, message: Message, why: str) -> None:
        try:
            self.source.release(message, 0.0)
        except Exception as exc:
            log.warning(
                "message %s could not be released (%s); it reappears later", message.id, exc
            )
        self._count(
            Event("released", message.id, result_key(message), None, message.receive_count, why)
        )

    def _count(self, event: Event) -> None:
        with self._lock:
            setattr(self.report, event.outcome, getattr(self.report, event.outcome) + 1)
        log.info("message %s: %s %s", event.message_id, event.outcome, event.location or "")
        if self.on_event is not None:
            self.on_event(event)

    # -- visibility and shutdown -----------------------------------------------------------------

    def _heartbeat(self) -> None:
        """Every quarter of the visibility timeout, extend each message held for half of it."""
        tick = self.visibility_s / 4
        while not self._done.is_set():
            with self._lock:
                now = self.clock()
                due = [
                    entry
                    for entry in self._in_flight.values()
                    if not entry.released and now - entry.extended_at >= self.visibility_s / 2
                ]
            if due:
                try:
                    self.source.extend([entry.message for entry in due], self.visibility_s)
                except Exception as exc:
                    log.warning("could not extend the visibility of %d messages: %s", len(due), exc)
                else:
                    with self._lock:
                        for entry in due:
                            entry.extended_at = now
            self._done.wait(tick)

    def _drain(self) -> None:
        """Wait up to `drain_s` for messages in flight; give back the ones still running."""
        deadline = self.clock() + self.drain_s
        with self._lock:
            while self._in_flight and self.clock() < deadline:
                self._lock.wait(timeout=max(0.0, min(1.0, deadline - self.clock())))
            left = [entry for entry in self._in_flight.values() if not entry.released]
            for entry in left:
                entry.released = True
        for entry in left:
            self._give_back(entry.message, f"still running after {self.drain_s:g} s of draining")
