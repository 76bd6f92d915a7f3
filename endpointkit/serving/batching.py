"""Running predict off the event loop, and dynamic batching.

``Executor`` runs a blocking call in one worker thread per process; a predictor marked
``inline = True`` runs on the event loop instead, which saves the thread hop (tens of
microseconds) for tiny models. When ``inline`` is unset the executor decides by measuring:

1. in the thread, 32 calls at a time: a 90th-percentile CPU time under 100 us (CPU time, because
   wall time in the thread includes waiting for the GIL while the loop is busy) and a
   10th-percentile wall time under 5 ms (predictors that sleep or wait on I/O use no CPU but
   take long) make it eligible;
2. an inline trial of 32 calls: two calls over 1 ms send it back to the thread for good (a
   sleeping predictor blocks the loop at most twice, for at most ~5 ms each);
3. inline from then on; three calls in a row over 2 ms, or one over 20 ms, send it back for good.

``Batcher`` (Triton-style, opportunistic): requests queue; whenever the model thread is free,
everything queued (up to ``max_batch_size`` instances, same ``parameters``) becomes one predict
call. With ``max_latency_ms > 0`` a partial batch waits up to that long for more requests. Each
caller gets exactly its own slice of the outputs, in order; an error fails only that batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

INLINE_PROMOTE_S = 100e-6
ELIGIBLE_WALL_S = 5e-3
TRIAL_SLOW_S = 1e-3
INLINE_DEMOTE_S = 2e-3
INLINE_DEMOTE_WALL_S = 20e-3
_SAMPLES = 32
_WINDOWS = 16


class Executor:
    """Calls ``fn(*args)`` in a thread or inline, deciding by the predictor's hint or by timing."""

    def __init__(self, inline: bool | None, threads: int = 1) -> None:
        self.auto = inline is None
        self.inline = bool(inline)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="predict")
        self._wall: list[float] = []
        self._cpu: list[float] = []
        self._windows = 0
        self._slow = 0
        self._trial = 0  # inline trial calls left

    @staticmethod
    def _timed(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, float, float]:
        w0, c0 = time.perf_counter(), time.thread_time()
        result = fn(*args)
        return result, time.perf_counter() - w0, time.thread_time() - c0

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Result of ``fn(*args)``; exceptions propagate."""
        if self.inline:
            return self.run_inline(fn, *args)
        loop = asyncio.get_running_loop()
        result, wall, cpu = await loop.run_in_executor(self._pool, self._timed, fn, args)
        if self.auto:
            self._observe(wall, cpu)
        return result

    async def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the model thread whatever ``inline`` says (a streaming predictor's
        steps may block between chunks); not timed."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def run_later(self, fn: Callable[[], Any]) -> None:
        """Queue ``fn()`` on the model thread without waiting (its errors are dropped)."""
        with contextlib.suppress(RuntimeError):  # the pool is already shut down
            self._pool.submit(fn)

    def run_inline(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the calling thread (the event loop), watching its duration."""
        w0 = time.perf_counter()
        result = fn(*args)
        if not self.auto:  # declared inline: trusted
            return result
        wall = time.perf_counter() - w0
        if self._trial:
            self._trial -= 1
            if wall > TRIAL_SLOW_S:
                self._slow += 1
                if self._slow >= 2:
                    self._demote()
            if not self._trial:
                self._slow = 0
        # One call over 2 ms may be the OS preempting a busy box: demote after three in a row,
        # or at once past 20 ms.
        elif wall > INLINE_DEMOTE_S:
            self._slow += 1
            if wall > INLINE_DEMOTE_WALL_S or self._slow >= 3:
                self._demote()
        else:
            self._slow = 0
        return result

    def _demote(self) -> None:
        self.inline = False
        self.auto = False  # it blocked the loop; never again

    def _observe(self, wall: float, cpu: float) -> None:
        self._wall.append(wall)
        self._cpu.append(cpu)
        if len(self._cpu) < _SAMPLES:
            return
        cpu_p90 = sorted(self._cpu)[int(0.9 * _SAMPLES)]
        wall_p10 = sorted(self._wall)[int(0.1 * _SAMPLES)]
        self._wall, self._cpu = [], []
        self._windows += 1
        if cpu_p90 < INLINE_PROMOTE_S and wall_p10 < ELIGIBLE_WALL_S:
            self.inline = True
            self._trial = _SAMPLES
            self._slow = 0
        elif self._windows >= _WINDOWS:
            self.auto = False

    def idle(self, wait_s: float) -> bool:
        """Whether a no-op queued on the model thread runs within ``wait_s``."""
        try:
            future = self._pool.submit(int)
        except RuntimeError:  # already shut down
            return True
        done, _ = wait([future], timeout=wait_s)
        return bool(done)

    def shutdown(self) -> None:
        """Stop the thread pool without waiting for a running call."""
        self._pool.shutdown(wait=False, cancel_futures=True)


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


class _Item:
    __slots__ = ("future", "instances", "n", "parameters", "t0")

    def __init__(
        self, instances: Any, parameters: dict[str, Any] | None, future: asyncio.Future[Any]
    ) -> None:
        self.instances = instances
        self.parameters = parameters
        self.n = count(instances)
        self.future = future
        self.t0 = time.monotonic()


class BatchSizeMismatch(RuntimeError):
    """The predictor returned a different number of outputs than instances."""


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

    async def submit(self, instances: Any, parameters: dict[str, Any] | None) -> Any:
        """Predictions for ``instances``, computed in some batch."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        item = _Item(instances, parameters, loop.create_future())
        self._queue.append(item)
        assert self._wake is not None
        self._wake.set()
        return await item.future

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
        return [i for i in batch if not i.future.done()]  # drop callers that timed out

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
        merged = _concat([i.instances for i in batch])
        total = sum(i.n for i in batch)
        if self.on_batch is not None:
            self.on_batch(total)
        try:
            outputs = await self.executor.call(self.predict, merged, batch[0].parameters)
            got = count(outputs)
            if got != total:
                raise BatchSizeMismatch(
                    f"The predictor returned {got} predictions for a batch of {total} instances"
                )
        except Exception as exc:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
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
