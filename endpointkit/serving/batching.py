"""Running predict off the event loop, and dynamic batching.

``Executor`` runs every predictor call on one dedicated model thread per process, so the event
loop (health checks, timeouts, other connections) never waits for predictor code. The one
exception is an explicit opt-in: a predictor class with ``inline = True`` runs ``predict`` on
the event loop. Your predict then runs on the event loop: health checks and timeouts wait for
it; only for calls of a few microseconds. Nothing promotes a predictor to inline by itself (an
earlier executor did, by timing: one 8 s call of a promoted model then blocked ``/ping`` 7 s).

The hop to the model thread is a ``queue.SimpleQueue`` (no lock in Python code) and the answer
comes back with ``loop.call_soon_threadsafe`` onto a plain asyncio future, instead of
``run_in_executor`` (a ``concurrent.futures.Future``, its condition lock, and a second future
chained to it). Measured with ``benchmarks/serving/hop.py`` (the whole app in process on uvloop,
``/invocations`` of a row-sum model, microseconds per request, median of 5; 2-core machine shared
with other work, so compare within a row):

    hop                                      1 at a time   64 at once
    inline (opt-in; what auto-promotion did)     16-29         21-31
    run_in_executor (the old thread hop)        188           125-196
    SimpleQueue + call_soon_threadsafe         148-217         55-90

So the model thread costs a lone request ~150 us more than inline (two thread wake-ups), and
under load ~40-60 us per request; the SimpleQueue hop saves 40-130 us per request under load
against ``run_in_executor``. Ranges are several runs on a machine with a load average of 8.

``Batcher`` (Triton-style, opportunistic): requests queue; whenever the model thread is free,
everything queued (up to ``max_batch_size`` instances, same ``parameters``) becomes one predict
call. With ``max_latency_ms > 0`` a partial batch waits up to that long for more requests. Each
caller gets exactly its own slice of the outputs, in order. When a merged batch fails with
what one bad request causes (an input error: ValueError, TypeError, KeyError, IndexError, a 4xx
status, a count mismatch), its halves are retried down to single requests, so that request
fails alone: a lone bad request among 64 costs about 12 calls. Any other failure (the predictor
failing as a whole) fails the batch without retries, and a half that could no longer finish in
time is answered 503 rather than run.
A request waits in the batcher under the same deadline rule as a queued call (answered 503 once
it could no longer finish in time; 504 at its deadline once its batch runs) without a task or
``wait_for`` of its own: one timer per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

EWMA_ALPHA = 0.2  # weight of the newest call in the service-time estimate


class Dropped(Exception):
    """A queued call was never run: its client left (``gone``) or its deadline passed."""

    def __init__(self, gone: bool) -> None:
        super().__init__("client gone" if gone else "deadline passed")
        self.gone = gone


class CallTimeout(Exception):
    """The caller's deadline passed while its call was queued or running (``job.started``)."""

    def __init__(self, job: _Job) -> None:
        super().__init__("deadline passed")
        self.job = job


class _Job:
    """One call for the model thread; ``loop`` is None for fire-and-forget calls.

    ``cycle`` is the request's connection state (uvicorn's ``RequestResponseCycle``): its
    ``disconnected`` flag turns true when the client goes. ``started`` stays 0.0 until the
    model thread starts the call; ``abandoned`` says the caller stopped waiting."""

    __slots__ = (
        "abandoned",
        "args",
        "cycle",
        "deadline",
        "error",
        "fn",
        "future",
        "loop",
        "result",
        "started",
        "timer",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop | None,
        future: asyncio.Future[Any] | None,
        deadline: float = math.inf,
        cycle: Any = None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.loop = loop
        self.future = future
        self.deadline = deadline
        self.cycle = cycle
        self.started = 0.0
        self.abandoned = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.timer: asyncio.TimerHandle | None = None  # the caller's deadline timer, if any


def _settle(job: _Job) -> None:
    """On the loop: hand the model thread's outcome to the waiting coroutine."""
    future = job.future
    if future is None or future.done():  # the caller stopped waiting (timeout, cancel)
        return
    if job.error is not None:
        future.set_exception(job.error)
    else:
        future.set_result(job.result)


def _expire(job: _Job) -> None:
    """On the loop, at the caller's deadline."""
    future = job.future
    if future is not None and not future.done():
        future.set_exception(CallTimeout(job))


def _too_late_to_start(job: _Job) -> None:
    """On the loop, at the latest start that could still finish by the deadline (by the
    moving average of a call's duration, less the margin for sending the answer): a call still
    queued is answered now, before its deadline, and never runs; a running one gets until the
    deadline."""
    future = job.future
    if future is None or future.done():
        return
    if job.started:
        loop = job.loop
        assert loop is not None  # an awaited call always has its loop
        # the caller cancels job.timer when it stops waiting: the job is not kept till then
        job.timer = loop.call_later(max(0.0, job.deadline - time.monotonic()), _expire, job)
        return
    job.abandoned = True  # the model thread skips it if it gets there first
    future.set_exception(CallTimeout(job))


class Executor:
    """Calls ``fn(*args)`` on the model thread, or inline when the predictor opted in.

    For admission control it keeps ``pending`` (calls submitted and still awaited; touched on
    the event loop only) and ``service_s`` (a moving average of a call's duration, written by
    the model thread). ``running`` is the call on the model thread now, if any."""

    def __init__(self, inline: bool | None = False) -> None:
        self.inline = bool(inline)
        self.pending = 0
        self.service_s = 0.0
        # Time kept for sending the answer: a queued call starts only if it should end this
        # long before its deadline (the runtime sets a share of the request timeout).
        self.margin_s = 0.0
        self._waiting: set[_Job] = set()  # awaited calls (the event loop's side)
        self.running: _Job | None = None
        self._queue: SimpleQueue[_Job | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        """Start the model thread now (else the first call does)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="predict", daemon=True)
            self._thread.start()

    def _submit(self, job: _Job) -> None:
        if self._thread is None:
            self.start()
        self._queue.put(job)

    def _work(self) -> None:
        get = self._queue.get
        monotonic = time.monotonic
        while (job := get()) is not None:
            if self._closed or job.abandoned:  # shut down, or nobody waits any more
                continue
            now = monotonic()
            cycle = job.cycle
            if cycle is not None and cycle.disconnected:
                job.error = Dropped(gone=True)
            elif now + self.service_s + self.margin_s > job.deadline:  # not in time
                job.error = Dropped(gone=False)
            else:
                job.started = now
                self.running = job
                try:
                    job.result = job.fn(*job.args)
                except Exception as exc:
                    job.error = exc
                except BaseException as exc:  # SystemExit in a future would stop the loop
                    job.error = RuntimeError(f"The predictor raised {type(exc).__name__}")
                    job.error.__cause__ = exc
                self.running = None
                took = monotonic() - now
                estimate = self.service_s
                self.service_s = estimate + EWMA_ALPHA * (took - estimate) if estimate else took
            loop = job.loop
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    loop.call_soon_threadsafe(_settle, job)

    async def call(
        self, fn: Callable[..., Any], *args: Any, deadline: float = math.inf, cycle: Any = None
    ) -> Any:
        """Result of ``fn(*args)``; exceptions propagate. With a ``deadline``
        (``time.monotonic()``) it raises :class:`CallTimeout` when the deadline passes first,
        and :class:`Dropped` when the model thread finds, before starting the call, that
        ``cycle.disconnected`` is true or that the call would end past the deadline (by the
        moving average of a call's duration)."""
        if self.inline:
            return fn(*args)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        job = _Job(fn, args, loop, future, deadline, cycle)
        self._submit(job)
        self.pending += 1
        self._waiting.add(job)
        if deadline != math.inf:
            # A call not started by deadline - (its expected duration) cannot finish in
            # time: answer it then, so even a queued request's 503 leaves before the deadline.
            latest_start = deadline - self.service_s - self.margin_s - time.monotonic()
            job.timer = loop.call_later(max(0.0, latest_start), _too_late_to_start, job)
        try:
            return await future
        finally:  # answered, timed out or cancelled: a call not yet started never runs
            job.abandoned = True
            self.pending -= 1
            self._waiting.discard(job)
            if job.timer is not None:
                job.timer.cancel()
                job.timer = None

    def in_thread(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """``fn(*args)`` on the model thread whatever ``inline`` says (a streaming predictor's
        steps may block between chunks)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._submit(_Job(fn, args, loop, future))
        return future

    def run_later(self, fn: Callable[[], Any]) -> None:
        """Queue ``fn()`` on the model thread without waiting (its errors are dropped)."""
        self._submit(_Job(fn, (), None, None))

    def run_inline(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the calling thread (the event loop): declared inline, trusted."""
        return fn(*args)

    def idle(self, wait_s: float) -> bool:
        """Whether a no-op queued on the model thread runs within ``wait_s``."""
        if self._thread is None or not self._thread.is_alive():
            return True
        done = threading.Event()
        self._queue.put(_Job(done.set, (), None, None))
        return done.wait(wait_s)

    def fail_queued(self) -> int:
        """On the loop: answer every awaited call not yet started with :class:`CallTimeout`
        now (they never run); for a model thread held by a stuck call. Returns how many."""
        failed = 0
        for job in list(self._waiting):
            future = job.future
            if job.started or future is None or future.done():
                continue
            job.abandoned = True
            future.set_exception(CallTimeout(job))
            failed += 1
        return failed

    def shutdown(self) -> None:
        """Stop the model thread without waiting for a running call; queued calls never run."""
        self._closed = True
        self._queue.put(None)


def count(instances: Any) -> int:
    """Number of instances in a list, an array (first axis) or a dict of arrays."""
    if isinstance(instances, dict):
        first: Any = next(iter(instances.values()), [])
        return len(first)
    return len(instances)


def _concat(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    first: Any = parts[0]
    if isinstance(first, dict):
        return {k: _concat([p[k] for p in parts]) for k in first}
    if all(isinstance(p, list) for p in parts):
        merged: list[Any] = []
        for p in parts:
            merged.extend(p)
        return merged
    import numpy as np

    if all(hasattr(p, "shape") for p in parts):
        return np.concatenate(parts)
    merged = []
    for p in parts:
        merged.extend(p.tolist() if hasattr(p, "tolist") else list(p))
    return merged


def _slice(outputs: Any, start: int, stop: int) -> Any:
    if isinstance(outputs, dict):
        return {k: v[start:stop] for k, v in outputs.items()}
    return outputs[start:stop]


class BatchTimeout(Exception):
    """A request's deadline passed while its batch was running."""


class _Item:
    __slots__ = (
        "cycle",
        "deadline",
        "future",
        "instances",
        "n",
        "parameters",
        "started",
        "t0",
        "timer",
    )

    def __init__(
        self,
        instances: Any,
        parameters: dict[str, Any] | None,
        future: asyncio.Future[Any],
        deadline: float,
        cycle: Any,
    ) -> None:
        self.instances = instances
        self.parameters = parameters
        self.n = count(instances)
        self.future = future
        self.t0 = time.monotonic()
        self.deadline = deadline
        self.cycle = cycle
        self.started = False  # taken into a batch that runs
        self.timer: asyncio.TimerHandle | None = None

    def dropped(self, ends: float) -> bool:
        """Whether to leave this item out of its batch: its caller stopped waiting, its
        client left, or a call now would end (``ends``) past its deadline (its caller then
        gets :class:`Dropped`)."""
        if self.future.done():
            return True
        gone = self.cycle is not None and self.cycle.disconnected
        if gone or ends > self.deadline:
            self.future.set_exception(Dropped(gone))
            return True
        return False


def _item_too_late(item: _Item) -> None:
    """On the loop, at the latest start that could still finish by the item's deadline: a
    queued item is answered now (:class:`Dropped`); one whose batch runs gets until then."""
    if item.future.done():
        return
    if item.started:
        delay = max(0.0, item.deadline - time.monotonic())
        item.timer = asyncio.get_running_loop().call_later(delay, _item_expired, item)
        return
    item.future.set_exception(Dropped(gone=False))


def _item_expired(item: _Item) -> None:
    if not item.future.done():
        item.future.set_exception(BatchTimeout())


class BatchSizeMismatch(RuntimeError):
    """The predictor returned a different number of outputs than instances."""


def _one_request_may_be_at_fault(exc: Exception) -> bool:
    """Whether one bad request can explain a merged batch's failure: an input error or a
    count mismatch, not the predictor failing as a whole (retrying that only repeats it)."""
    if isinstance(exc, (ValueError, TypeError, KeyError, IndexError, BatchSizeMismatch)):
        return True
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    return isinstance(status, int) and 400 <= status < 500


class Batcher:
    """Merges concurrent ``submit`` calls into batched ``predict`` calls."""

    def __init__(
        self,
        predict: Callable[[Any, dict[str, Any] | None], Any],
        executor: Executor,
        max_batch_size: int,
        max_latency_ms: float,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.predict = predict
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.max_latency_s = max_latency_ms / 1000.0
        self.on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def submit(
        self,
        instances: Any,
        parameters: dict[str, Any] | None,
        deadline: float = math.inf,
        cycle: Any = None,
    ) -> Any:
        """Predictions for ``instances``, computed in some batch. :class:`Dropped` when the
        client left (``cycle.disconnected``) or the request could no longer finish by
        ``deadline`` before its batch ran; :class:`BatchTimeout` when ``deadline`` passed while
        its batch ran."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        item = _Item(instances, parameters, loop.create_future(), deadline, cycle)
        if deadline != math.inf:
            executor = self.executor
            latest_start = deadline - executor.service_s - executor.margin_s - time.monotonic()
            item.timer = loop.call_later(max(0.0, latest_start), _item_too_late, item)
        self._queue.append(item)
        assert self._wake is not None
        self._wake.set()
        try:
            return await item.future
        finally:
            if item.timer is not None:
                item.timer.cancel()

    def fail_queued(self) -> int:
        """Answer every request still queued with :class:`Dropped` now (the model thread is
        held by a stuck call: they would never run). Returns how many."""
        failed = 0
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(Dropped(gone=False))
                failed += 1
        return failed

    @property
    def waiting(self) -> int:
        """Requests queued for a batch (not instances: a request may carry several)."""
        return len(self._queue)

    def _queued(self) -> int:
        return sum(i.n for i in self._queue)

    def _take(self) -> list[_Item]:
        first = self._queue.popleft()
        batch = [first]
        total = first.n
        while self._queue:
            nxt = self._queue[0]
            if total + nxt.n > self.max_batch_size or nxt.parameters != first.parameters:
                break
            batch.append(self._queue.popleft())
            total += nxt.n
        now = time.monotonic()
        taken = [i for i in batch if not i.dropped(now)]
        for item in taken:
            item.started = True
        return taken

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            if not self._queue:
                wake.clear()
                await wake.wait()
                continue
            if self.max_latency_s > 0:
                deadline = self._queue[0].t0 + self.max_latency_s
                while self._queued() < self.max_batch_size:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    wake.clear()
                    try:
                        await asyncio.wait_for(wake.wait(), remaining)
                    except asyncio.TimeoutError:
                        break
            batch = self._take()
            if batch:
                await self._execute(batch)

    async def _execute(self, batch: list[_Item]) -> None:
        """Run ``batch`` as one call; when an input error fails it, its halves (so a bad
        request fails alone)."""
        total = sum(i.n for i in batch)
        if self.on_batch is not None:
            self.on_batch(total)
        try:
            merged = _concat([i.instances for i in batch])
            outputs = await self.executor.call(self.predict, merged, batch[0].parameters)
            got = count(outputs)
            if got != total:
                raise BatchSizeMismatch(
                    f"The predictor returned {got} predictions for a batch of {total} instances"
                )
        except (CallTimeout, Dropped):  # never ran: the model thread is held (stuck)
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(Dropped(gone=False))
            return
        except Exception as exc:
            if len(batch) == 1 or not _one_request_may_be_at_fault(exc):
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                return
            middle = len(batch) // 2
            executor = self.executor
            for half in (batch[:middle], batch[middle:]):
                ends = time.monotonic() + executor.service_s + executor.margin_s
                if left := [i for i in half if not i.dropped(ends)]:
                    await self._execute(left)
            return
        start = 0
        for item in batch:
            if not item.future.done():
                item.future.set_result(_slice(outputs, start, start + item.n))
            start += item.n

    def close(self) -> None:
        """Cancel the batching task."""
        if self._task is not None:
            self._task.cancel()
