"""The loaded model inside one worker: loading in the background, readiness, and running
requests through validation, pre/post-processing, batching and the per-request timeout.

Admission (:meth:`ModelRuntime.admit`, before the body is decoded): a request is refused with
503 and Retry-After when the model thread's queue cannot finish it within
``request_timeout_s``, estimated as (queued calls + 1) x the moving average of a call's
duration (one model thread: concurrency 1; with batching, queued requests count per
``max_batch_size``). An admitted request gets a deadline, ``request_timeout_s`` from now; the
model thread drops a queued call whose client disconnected or whose deadline passed instead of
running it, and a request still queued when it could no longer finish by its deadline (the
deadline less a call's expected duration) gets 503 with Retry-After then, before the deadline.

A thread cannot be cancelled: a predict call that runs for ``request_timeout_s`` keeps the
model thread, and every later request would wait behind it. So the first such call makes
the worker ``stuck``: health routes answer 503 (``model_stuck``), new requests 503 with
Retry-After, and ``on_stuck`` (set by the app) starts a graceful shutdown; the process then
exits with ``EXIT_STUCK`` and is replaced (by uvicorn's parent with several workers; by the
platform or the local supervisor with one).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any

from .batching import (
    Batcher,
    BatchSizeMismatch,
    BatchTimeout,
    CallTimeout,
    Dropped,
    Executor,
    count,
)
from .errors import (
    InvalidInput,
    NotReady,
    Overloaded,
    PredictorFailed,
    RequestTimeout,
    ServingError,
)
from .metrics import Metrics
from .predictor import PredictorOptions, load_predictor
from .reqlog import RequestLog
from .settings import Settings
from .validation import Check, build_validator

ANSWER_MARGIN = 0.05  # share of the request timeout kept for sending a queued call's answer
EXIT_STUCK = 75  # EX_TEMPFAIL: restart me (uvicorn's parent stops everything only on 3)
_END = object()  # the end of a sync stream (StopIteration cannot cross a thread's future)


class Ticket:
    """An admitted request: its deadline (``time.monotonic()``) and its connection state
    (uvicorn's ``RequestResponseCycle``, whose ``disconnected`` turns true when the client
    goes; None under a server without one)."""

    __slots__ = ("cycle", "deadline")

    def __init__(self, deadline: float, cycle: Any) -> None:
        self.deadline = deadline
        self.cycle = cycle


# set by admit() in the request's own task, read by the calls that request makes
_TICKET: ContextVar[Ticket | None] = ContextVar("endpointkit_ticket", default=None)


async def _close_source(source: Any, executor: Executor) -> None:
    """Close a stream the client stopped reading, so the predictor's cleanup runs."""
    if hasattr(source, "aclose"):
        with contextlib.suppress(Exception):
            await source.aclose()
    elif hasattr(source, "close"):
        # on the model thread, after any step still running there (a generator cannot be
        # closed while it executes); not awaited: a slow step must not hold the response
        executor.run_later(source.close)


def map_exception(exc: BaseException) -> ServingError:
    """A predictor's exception -> the ServingError the client sees.

    The exception's text never reaches the client (it may hold paths, hosts or secrets): the
    client gets a generic message with its request id, and the app logs the exception, found
    as ``__cause__``, under that id. Two exceptions keep their message: ServingError, and an
    exception with a 4xx ``status_code`` (a message the predictor wrote for its client)."""
    if isinstance(exc, ServingError):
        return exc
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status < 500:
        message = str(getattr(exc, "message", None) or exc)
        return ServingError(message, status=status, code="predictor_status")
    err: ServingError
    if isinstance(status, int) and 500 <= status < 600:
        err = ServingError(
            f"The predictor failed with status {status}", status=status, code="predictor_status"
        )
    elif isinstance(exc, ValueError):
        err = InvalidInput("The predictor rejected the input", code="predictor_rejected")
    else:
        err = PredictorFailed("The predictor failed")
    err.logged = True
    err.__cause__ = exc
    return err


class ModelRuntime:
    """Holds the predictor once loaded; every request goes through :meth:`predict`."""

    def __init__(self, settings: Settings, log: RequestLog, metrics: Metrics) -> None:
        self.settings = settings
        self.log = log
        self.metrics = metrics
        self.predictor: Any = None
        self.options = PredictorOptions()
        self.validator: Check | None = None
        self.executor: Executor | None = None
        self.batcher: Batcher | None = None
        self.state = "loading"
        self.error: str | None = None
        self.on_stuck: Any = None  # called once when a call outlives its timeout

    @property
    def ready(self) -> bool:
        """True once a predictor is installed."""
        return self.state == "ready"

    def not_ready(self) -> NotReady:
        """The 503 to answer while not ready, with the reason."""
        if self.state == "failed":
            return NotReady(f"The model failed to load: {self.error}", code="model_load_failed")
        if self.state == "stuck":
            return NotReady(
                f"A predict call outlived its timeout of {self.settings.request_timeout_s:g} s "
                f"and holds the model thread; this worker is being replaced, retry shortly",
                code="model_stuck",
                headers=[(b"retry-after", b"5")],
            )
        return NotReady(
            "The model is still loading; retry shortly",
            code="model_loading",
            headers=[(b"retry-after", b"1")],
        )

    def install(self, predictor: Any) -> None:
        """Make ``predictor`` (already loaded) serve requests."""
        options = PredictorOptions.of(predictor)
        s = self.settings
        max_batch = s.max_batch_size or options.max_batch_size
        latency = s.max_latency_ms if s.max_latency_ms is not None else options.max_latency_ms
        self.predictor = predictor
        self.options = options
        self.validator = build_validator(predictor)
        self.executor = Executor(options.inline)
        # a queued call must end 5 % of the timeout before it, so its answer is sent in time
        self.executor.margin_s = ANSWER_MARGIN * self.settings.request_timeout_s
        self.executor.start()
        if max_batch > 1:
            self.batcher = Batcher(
                predictor.predict,
                self.executor,
                max_batch,
                latency,
                self.metrics.batch_sizes.observe,
            )
        self.state = "ready"
        self.metrics.ready = True

    def start_loading(self, loop: asyncio.AbstractEventLoop) -> None:
        """Load the predictor in a thread so the socket answers (503) meanwhile."""

        def work() -> None:
            s = self.settings
            report: Callable[[Any], None]
            outcome: Any
            try:
                self.log.event(
                    "info", "model_loading", model_dir=s.model_dir, predictor=s.predictor
                )
                predictor = load_predictor(s.model_dir, predictor=s.predictor, env=s.env)
                # install() builds the validator, which may raise (e.g. a missing jsonschema)
                report, outcome = self._installed, predictor
            except BaseException as exc:  # report every failure: the process must keep serving 503
                report, outcome = self._failed, exc
            # The server may have stopped meanwhile (it could not bind its port, say): its loop
            # is closed, nobody is served, and there is nothing to report to.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(report, outcome)

        threading.Thread(target=work, name="model-loader", daemon=True).start()

    def _installed(self, predictor: Any) -> None:
        try:
            self.install(predictor)
        except Exception as exc:
            self._failed(exc)
            return
        # Everything loaded so far (modules, the model) lives as long as the process: move it
        # out of the collector's reach, so a full collection scans only what requests made.
        # Measured: gen-2 pauses of up to 13 ms (22 in 10 s at 18k req/s) were the open-loop
        # p99 outliers (benchmarks/results/serving.md, section 3).
        gc.collect()
        gc.freeze()
        self.log.event("info", "model_ready", predictor=type(predictor).__name__)

    def _failed(self, exc: BaseException) -> None:
        self.state = "failed"
        self.error = f"{type(exc).__name__}: {exc}"
        self.log.event("error", "model_load_failed", exc=exc)

    def admit(self, cycle: Any) -> None:
        """Let a request in, with a deadline, or raise :class:`Overloaded` (503, Retry-After)
        when the model thread's queue would not finish it within the request timeout.
        ``cycle``: the request's connection state, if it has a ``disconnected`` flag."""
        timeout = self.settings.request_timeout_s
        executor = self.executor
        if executor is not None and executor.service_s:
            queued = executor.pending + 1.0
            if self.batcher is not None:
                queued += self.batcher.waiting / self.batcher.max_batch_size
            wait = queued * executor.service_s
            if wait > timeout:
                retry = max(1, math.ceil(wait - timeout))
                raise Overloaded(
                    f"The model is overloaded: its queue needs about {wait:.1f} s, more than the "
                    f"request timeout of {timeout:g} s; retry after {retry} s",
                    headers=[(b"retry-after", b"%d" % retry)],
                )
        if cycle is not None and not hasattr(cycle, "disconnected"):
            cycle = None
        _TICKET.set(Ticket(time.monotonic() + timeout, cycle))

    def _stuck(self) -> None:
        """A call has held the model thread for the request timeout: replace this worker.
        The calls queued behind it can never run: they are answered now (503, retry)."""
        if self.state == "ready":
            self.state = "stuck"
            self.metrics.ready = False
            if self.executor is not None:
                self.executor.fail_queued()
            if self.batcher is not None:
                self.batcher.fail_queued()
            self.log.event(
                "error",
                "model_stuck",
                timeout_s=self.settings.request_timeout_s,
                action="replacing worker",
            )
            if self.on_stuck is not None:
                self.on_stuck()

    def timed_out(self, what: str = "answer") -> RequestTimeout:
        """The 504 for a thread call that outlived its timeout; marks the worker stuck."""
        self._stuck()
        timeout = self.settings.request_timeout_s
        if what == "stream":
            return RequestTimeout(
                f"The predictor produced nothing for {timeout:g} s while streaming"
            )
        return RequestTimeout(f"The predictor did not answer within {timeout:g} s")

    def _deadline_passed(self, running: Any) -> ServingError:
        """The answer for a request whose deadline passed. Still queued (``running`` None or
        not started): 503, it never ran. Running: 504, and the worker is stuck once that
        call has run for the request timeout: now if it ran for 90 % of it already (it started
        as good as right away, so the client that gets this 504 also sees the worker stuck),
        else when that time comes."""
        timeout = self.settings.request_timeout_s
        if running is None or not running.started:
            return Overloaded(
                f"The request could not start in time to finish within the request timeout "
                f"of {timeout:g} s; the server is overloaded, retry shortly",
                headers=[(b"retry-after", b"1")],
            )
        ran = time.monotonic() - running.started
        if ran >= 0.9 * timeout:
            self._stuck()
        else:
            asyncio.get_running_loop().call_later(timeout - ran, self._check_stuck, running)
        return RequestTimeout(f"The predictor did not answer within {timeout:g} s")

    def _check_stuck(self, job: Any) -> None:
        executor = self.executor
        if executor is not None and executor.running is job:
            self._stuck()

    def _dropped(self, exc: Dropped) -> ServingError:
        if exc.gone:  # nobody reads this answer
            return ServingError("Client disconnected", status=499, code="client_closed")
        return self._deadline_passed(None)

    def _ticket(self) -> Ticket:
        ticket = _TICKET.get()
        if ticket is None:  # not through the app (tests): a deadline from now
            ticket = Ticket(time.monotonic() + self.settings.request_timeout_s, None)
        return ticket

    async def _call(self, fn: Any, *args: Any) -> Any:
        executor = self.executor
        assert executor is not None
        if executor.inline:
            return await executor.call(fn, *args)
        ticket = self._ticket()
        try:
            return await executor.call(fn, *args, deadline=ticket.deadline, cycle=ticket.cycle)
        except CallTimeout as exc:
            if self.state == "stuck" and not exc.job.started:
                raise self.not_ready() from None  # queued behind the stuck call
            raise self._deadline_passed(exc.job) from None
        except Dropped as exc:
            raise self._dropped(exc) from None

    async def _batched(self, batcher: Batcher, instances: Any, parameters: Any) -> Any:
        ticket = self._ticket()
        try:
            return await batcher.submit(instances, parameters, ticket.deadline, ticket.cycle)
        except BatchTimeout:
            executor = self.executor
            raise self._deadline_passed(executor.running if executor else None) from None
        except Dropped as exc:
            if self.state == "stuck" and not exc.gone:
                raise self.not_ready() from None  # queued behind the stuck call
            raise self._dropped(exc) from None

    async def predict(self, instances: Any, parameters: dict[str, Any] | None) -> Any:
        """Predictions for one request's instances; raises ServingError only."""
        if self.state != "ready":
            raise self.not_ready()
        predictor = self.predictor
        options = self.options
        executor = self.executor
        if (
            executor is not None
            and executor.inline
            and self.batcher is None
            and self.validator is None
            and not options.has_preprocess
            and not options.has_postprocess
        ):  # the fast path for tiny models: no extra coroutine
            try:
                return executor.run_inline(predictor.predict, instances, parameters)
            except Exception as exc:
                raise map_exception(exc) from exc
        try:
            if self.validator is not None:
                self.validator(instances)
            if options.has_preprocess:
                instances = await self._call(predictor.preprocess, instances)
            if self.batcher is not None and not isinstance(instances, (bytes, str)):
                result = await self._batched(self.batcher, instances, parameters)
            else:
                result = await self._call(predictor.predict, instances, parameters)
            if options.has_postprocess:
                result = await self._call(predictor.postprocess, result)
            return result
        except BatchSizeMismatch as exc:
            err = PredictorFailed(str(exc))
            err.__cause__ = exc
            raise err from exc
        except Exception as exc:
            raise map_exception(exc) from exc

    async def raw(
        self,
        body: bytes,
        content_type: str | None,
        accept: str,
        attributes: str | None,
        hook: str = "handle_raw",
    ) -> tuple[bytes, str]:
        """Run the predictor's ``handle_raw`` (SageMaker toolkit scripts), or another hook of
        the same signature (``handle_body``: CPR predictors on the Vertex route)."""
        if self.state != "ready":
            raise self.not_ready()
        try:
            return await self._call(  # type: ignore[no-any-return]
                getattr(self.predictor, hook), body, content_type, accept, attributes
            )
        except Exception as exc:
            raise map_exception(exc) from exc

    async def stream(self, instances: Any, parameters: dict[str, Any] | None) -> AsyncIterator[Any]:
        """The items of the predictor's ``predict_stream`` as they come; raises ServingError
        only. Validation and ``preprocess`` run first; batching and ``postprocess`` do not
        apply. A sync generator steps on the model thread; ``request_timeout_s`` bounds the
        wait for each item."""
        if self.state != "ready":
            raise self.not_ready()
        predictor = self.predictor
        executor = self.executor
        assert executor is not None
        timeout = self.settings.request_timeout_s
        source: Any = None
        try:
            if self.validator is not None:
                self.validator(instances)
            if self.options.has_preprocess:
                instances = await self._call(predictor.preprocess, instances)
            fn = predictor.predict_stream
            if inspect.isasyncgenfunction(fn):
                source = fn(instances, parameters)
            else:  # creating the iterator may do the work (a function returning a list)
                made = await asyncio.wait_for(
                    executor.in_thread(fn, instances, parameters), timeout
                )
                source = made if hasattr(made, "__anext__") else iter(made)
            if hasattr(source, "__anext__"):
                while True:
                    try:
                        item = await asyncio.wait_for(source.__anext__(), timeout)
                    except StopAsyncIteration:
                        return
                    yield item
            else:
                while True:
                    item = await asyncio.wait_for(executor.in_thread(next, source, _END), timeout)
                    if item is _END:
                        return
                    yield item
        except asyncio.TimeoutError:
            if inspect.isasyncgenfunction(predictor.predict_stream):  # cancelled: not stuck
                raise RequestTimeout(
                    f"The predictor produced nothing for {timeout:g} s while streaming"
                ) from None
            raise self.timed_out("stream") from None
        except ServingError:
            raise
        except Exception as exc:
            raise map_exception(exc) from exc
        finally:
            if source is not None:
                await _close_source(source, executor)

    def check_count(self, instances: Any, predictions: Any) -> None:
        """Exactly one prediction per instance, or a 500 (a predictor bug)."""
        if (
            type(predictions) is list
            and type(instances) is list
            and len(predictions) == len(instances)
        ):  # the common case
            return
        try:
            got, want = count(predictions), count(instances)
        except TypeError:
            raise PredictorFailed(
                f"The predictor returned {type(predictions).__name__}, not one prediction per "
                f"instance",
                code="predictor_output",
            ) from None
        if got != want:
            raise PredictorFailed(
                f"The predictor returned {got} predictions for {want} instances",
                code="predictor_output",
            )

    def thread_idle(self, wait_s: float = 0.2) -> bool:
        """Whether the model thread finishes a no-op within ``wait_s`` (False: a call holds
        it, and the interpreter would wait for that call at exit)."""
        executor = self.executor
        if executor is None:
            return True
        return executor.idle(wait_s)

    def close(self) -> None:
        """Stop the batcher and the model thread."""
        if self.batcher is not None:
            self.batcher.close()
        if self.executor is not None:
            self.executor.shutdown()
