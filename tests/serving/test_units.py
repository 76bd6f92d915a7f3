"""Unit tests: settings precedence, content negotiation, codecs, metrics, and the ASGI app
through httpx's ASGITransport (no process)."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from typing import Any

import httpx
import numpy as np
import pytest

from endpointkit.serving import codecs
from endpointkit.serving.app import ServingApp
from endpointkit.serving.errors import BadRequest, NotAcceptable
from endpointkit.serving.metrics import Metrics
from endpointkit.serving.reqlog import RequestLog
from endpointkit.serving.settings import Settings

from .predictors import Sum


def test_settings_defaults_and_precedence() -> None:
    s = Settings.from_env({})
    assert (s.port, s.model_dir, s.health_route, s.predict_route) == (
        8080,
        "/opt/ml/model",
        "/health",
        "/predict",
    )
    assert s.sagemaker_max_bytes == 6 * 1024 * 1024
    assert s.vertex_max_bytes == 1_572_864
    assert s.grace_s == 25.0
    assert s.request_log == "sampled"
    s = Settings.from_env({"SAGEMAKER_BIND_TO_PORT": "9000", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "10"})
    assert s.port == 9000
    assert s.sagemaker_max_bytes == 10 * 1024 * 1024
    s = Settings.from_env(
        {"AIP_HTTP_PORT": "7000", "ENDPOINTKIT_PORT": "7001", "AIP_STORAGE_URI": "gs://b/m"}
    )
    assert s.port == 7001
    assert s.model_dir == "gs://b/m"
    s = Settings.from_env(
        {"AIP_PREDICT_ROUTE": "v1/x:predict", "SAGEMAKER_BATCH_STRATEGY": "SingleRecord"}
    )
    assert s.predict_route == "/v1/x:predict"
    assert s.batch_strategy == "SINGLE_RECORD"
    with pytest.raises(ValueError, match="ENDPOINTKIT_REQUEST_LOG"):
        Settings.from_env({"ENDPOINTKIT_REQUEST_LOG": "loud"})
    with pytest.raises(ValueError, match="ENDPOINTKIT_PORT must be an integer"):
        Settings.from_env({"ENDPOINTKIT_PORT": "x"})


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("text/*", "text/csv"),
        ("application/x-npy;q=0.2, text/csv;q=0.9", "text/csv"),
        ("image/png, application/json", "application/json"),
    ],
)
def test_negotiate(accept: str | None, expected: str) -> None:
    assert codecs.negotiate(accept, codecs.BUILTIN_TYPES, "application/json") == expected


def test_negotiate_refuses() -> None:
    with pytest.raises(NotAcceptable):
        codecs.negotiate("image/png, text/csv;q=0", codecs.BUILTIN_TYPES, "application/json")


def test_codecs_roundtrip() -> None:
    arr = np.arange(4.0).reshape(2, 2)
    assert codecs.decode(codecs.encode(arr, codecs.CSV), codecs.CSV).tolist() == arr.tolist()
    buf = codecs.encode(arr, codecs.NPY)
    assert np.load(io.BytesIO(buf)).tolist() == arr.tolist()
    assert codecs.encode(np.float16([1.5]), codecs.JSON) == b"[1.5]"
    assert codecs.encode([["a,b", 'q"']], codecs.CSV) == b'"a,b","q"""\n'
    assert codecs.decode(b"a,b\n", codecs.CSV) == [["a", "b"]]
    with pytest.raises(BadRequest):
        codecs.decode(b"{", codecs.JSON)


def test_metrics_render() -> None:
    m = Metrics("v1")
    m.observe("invocations", 200, 0.002)
    m.observe("invocations", 200, 0.2)
    m.batch_sizes.observe(3)
    text = m.render().decode()
    assert 'endpointkit_requests_total{worker="' in text
    assert 'route="invocations",status="200"} 2' in text
    assert 'le="0.0025"} 1' in text
    assert 'le="+Inf"} 2' in text
    assert "endpointkit_batch_size_count" in text


def test_request_log_levels() -> None:
    stream = io.BytesIO()
    log = RequestLog("errors", 1.0, "v", stream)
    log.request("r1", "POST", "/p", 200, 0.001, 1, 1)
    log.request("r2", "POST", "/p", 500, 0.001, 1, 1)
    assert b'"r1"' not in stream.getvalue()
    assert b'"r2"' in stream.getvalue()
    assert b'"version":"v"' in stream.getvalue()
    assert not RequestLog("off", 1.0, None, stream).wants(500)
    assert RequestLog("all", 0.0, None, stream).wants(200)
    assert RequestLog("sampled", 1.0, None, stream).wants(200)
    assert not RequestLog("sampled", 0.0, None, stream).wants(200)


def test_asgi_app_in_process() -> None:
    settings = Settings.from_env({"ENDPOINTKIT_REQUEST_LOG": "off"})
    sum_model = Sum()
    sum_model.load("")
    app = ServingApp(settings, predictor=sum_model)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/ping")).status_code == 200
            r = await client.post("/predict", json={"instances": [[1, 2], [3]]})
            assert r.json() == {"predictions": [3.0, 3.0]}
            r = await client.post("/invocations", json={"instances": [[1]]})
            assert r.json() == {"predictions": [1.0]}
            assert (await client.head("/ping")).status_code == 200

    asyncio.run(run())
    app.runtime.close()


def test_main_rejects_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from endpointkit.serving.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["train"])  # SageMaker training images get "train": this image only serves
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["--port", "not-a-number"])
    assert "invalid int value" in capsys.readouterr().err


def test_main_reports_bad_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from endpointkit.serving.__main__ import main

    monkeypatch.setenv("ENDPOINTKIT_REQUEST_LOG", "loud")
    assert main([]) == 2
    assert "ENDPOINTKIT_REQUEST_LOG" in capsys.readouterr().err


def test_executor_never_moves_a_predictor_onto_the_loop_by_itself() -> None:
    from endpointkit.serving.batching import Executor

    loop_thread = threading.get_ident()
    seen: set[int] = set()

    def tiny(x: int) -> int:
        seen.add(threading.get_ident())
        return x + 1

    async def run() -> None:
        ex = Executor(None)  # the predictor says nothing
        for i in range(200):  # many microsecond calls: the old executor promoted these
            assert await ex.call(tiny, i) == i + 1
        assert not ex.inline
        assert loop_thread not in seen
        ex.shutdown()

    asyncio.run(run())


def test_executor_runs_a_declared_inline_predictor_on_the_loop() -> None:
    from endpointkit.serving.batching import Executor

    async def run() -> None:
        ex = Executor(True)
        assert await ex.call(threading.get_ident) == threading.get_ident()
        ex.shutdown()

    asyncio.run(run())


def test_executor_turns_system_exit_into_an_error() -> None:
    from endpointkit.serving.batching import Executor

    def leave() -> None:
        raise SystemExit(3)

    async def run() -> None:
        ex = Executor(False)
        with pytest.raises(RuntimeError, match="SystemExit"):
            await ex.call(leave)
        assert await ex.call(int, "7") == 7  # the model thread still serves
        ex.shutdown()

    asyncio.run(run())


class _Cycle:
    disconnected = False


def test_executor_drops_a_queued_call_whose_client_left() -> None:
    from endpointkit.serving.batching import Dropped, Executor

    ran: list[int] = []

    async def run() -> None:
        ex = Executor(False)
        gate = threading.Event()
        first = asyncio.ensure_future(ex.call(gate.wait, 5))
        cycle = _Cycle()
        second = asyncio.ensure_future(
            ex.call(ran.append, 1, deadline=time.monotonic() + 5, cycle=cycle)
        )
        await asyncio.sleep(0.05)
        assert ex.pending == 2
        cycle.disconnected = True  # the client of the queued call leaves
        gate.set()
        assert await first
        with pytest.raises(Dropped) as info:
            await second
        assert info.value.gone
        assert ran == []
        assert ex.pending == 0
        ex.shutdown()

    asyncio.run(run())


def test_executor_answers_a_queued_call_at_its_deadline_and_never_runs_it() -> None:
    from endpointkit.serving.batching import CallTimeout, Executor

    ran: list[int] = []

    async def run() -> None:
        ex = Executor(False)
        gate = threading.Event()
        first = asyncio.ensure_future(ex.call(gate.wait, 5))
        await asyncio.sleep(0.02)  # the model thread is busy with it
        t0 = time.monotonic()
        with pytest.raises(CallTimeout) as info:
            await ex.call(ran.append, 1, deadline=t0 + 0.1)
        assert time.monotonic() - t0 < 1.0
        assert not info.value.job.started  # it waited; it never ran
        gate.set()
        assert await first
        assert await ex.call(int, "3") == 3
        assert ran == []
        assert ex.service_s > 0
        ex.shutdown()

    asyncio.run(run())


def test_executor_answers_a_queued_call_once_it_could_no_longer_finish_in_time() -> None:
    """Issue 12 (1,000 connections on a 100 ms model): a queued call was answered at its
    deadline, so its 503 left the server after the request timeout. A call that has not
    started by deadline - (a call's expected duration) cannot finish in time: it is answered
    then, before the deadline, and never runs."""
    from endpointkit.serving.batching import CallTimeout, Executor

    ran: list[int] = []

    async def run() -> None:
        ex = Executor(False)
        assert await ex.call(time.sleep, 0.4) is None  # a call takes about 0.4 s
        gate = threading.Event()
        first = asyncio.ensure_future(ex.call(gate.wait, 5))
        await asyncio.sleep(0.02)  # the model thread is busy with it
        deadline = time.monotonic() + 1.2
        with pytest.raises(CallTimeout) as info:
            await ex.call(ran.append, 1, deadline=deadline)
        answered = time.monotonic()
        # due at deadline - 0.4 s; the 0.4 s of headroom absorbs a loaded event loop
        assert answered < deadline, f"answered {answered - deadline:.3f} s after the deadline"
        assert not info.value.job.started
        gate.set()
        assert await first
        assert ran == []
        ex.shutdown()

    asyncio.run(run())


def test_supervisor_replaces_served_workers_and_gives_up_on_ones_that_never_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from endpointkit.serving import supervisor

    class FakeWorker:
        served = False

        def __init__(self, config: object = None, sockets: object = None) -> None:
            self.alive = True
            self.exitcode: int | None = None
            self.pid = id(self)
            self.process = SimpleNamespace(is_alive=lambda: self.alive)

        def _healthcheck(self, timeout: float) -> bool | None:
            return True if self.alive else None

        def start(self) -> None:
            pass

        def kill(self) -> None:
            pass

        def join(self) -> None:
            pass

    monkeypatch.setattr(supervisor, "Worker", FakeWorker)
    sup: Any = object.__new__(supervisor.Supervisor)  # no signal handlers, no processes
    sup.config = SimpleNamespace(timeout_worker_healthcheck=1)
    sup.sockets = []
    sup.should_exit = threading.Event()
    first, second = FakeWorker(), FakeWorker()
    sup.processes = [first, second]
    sup.keep_subprocess_alive()
    assert first.served
    assert second.served
    first.alive, first.exitcode = False, 3  # served, then exit 3 (e.g. os._exit(3))
    sup.keep_subprocess_alive()
    assert sup.processes[0] is not first
    assert not sup.should_exit.is_set()
    fresh = sup.processes[0]
    fresh.alive, fresh.exitcode = False, 3  # exit 3 before it ever reported started
    fresh.served = False
    sup.keep_subprocess_alive()
    assert sup.should_exit.is_set()
    assert sup.gave_up


def test_a_model_that_finishes_loading_after_the_server_stopped_raises_nothing(
    tmp_path: Any,
) -> None:
    """CI: `endpointkit serve` on a busy port ended its stderr with 'Exception in thread':
    the server stopped (its loop closed) while the model was still loading, and the loader
    thread's call_soon_threadsafe on the closed loop raised RuntimeError and printed a
    traceback after the CLI's one-line error."""
    from endpointkit.serving.runtime import ModelRuntime

    loaded = threading.Event()
    errors: list[BaseException | None] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        settings = Settings(model_dir=str(tmp_path), predictor="no_such_module:Predictor")
        stream = io.StringIO()
        runtime = ModelRuntime(settings, RequestLog("errors", 1.0, None, stream), Metrics(None))
        loop = asyncio.new_event_loop()
        real_log = runtime.log.event

        def slow_event(*args: Any, **kwargs: Any) -> None:  # the loader's first step
            time.sleep(0.3)  # the server stops meanwhile
            loaded.set()
            real_log(*args, **kwargs)

        runtime.log.event = slow_event  # type: ignore[method-assign]
        runtime.start_loading(loop)
        loop.close()
        assert loaded.wait(10)
        for thread in threading.enumerate():
            if thread.name == "model-loader":
                thread.join(10)
    finally:
        threading.excepthook = previous
    assert errors == []


def test_executor_keeps_a_margin_for_sending_the_answer() -> None:
    """Issue 12 (1,000 connections on a 100 ms model): 68 of 39,549 answers left the server
    after the 5 s timeout by its own clock even though every call was started only if it could
    end by the deadline: the answer still has to be written. With a margin, a queued call
    that would end within the margin of its deadline is answered 503 and never runs."""
    from endpointkit.serving.batching import CallTimeout, Dropped, Executor

    ran: list[int] = []

    async def run() -> None:
        ex = Executor(False)
        ex.margin_s = 0.5
        assert await ex.call(time.sleep, 0.2) is None  # a call takes about 0.2 s
        deadline = time.monotonic() + 0.6  # it could end by 0.2 s, not 0.5 s before this
        with pytest.raises((CallTimeout, Dropped)):
            await ex.call(ran.append, 1, deadline=deadline)
        assert time.monotonic() < deadline
        assert ran == []
        assert await ex.call(ran.append, 2, deadline=time.monotonic() + 5) is None
        assert ran == [2]
        ex.shutdown()

    asyncio.run(run())


def test_a_stuck_model_thread_answers_its_queued_calls_at_once() -> None:
    """Issue 12 (hung predictor, one worker): once the running call has held the model thread
    for its timeout, the calls queued behind it can never run; they waited for their own
    deadlines (and the graceful shutdown that replaces the worker waited with them)."""
    from endpointkit.serving.batching import CallTimeout, Executor

    ran: list[int] = []

    async def run() -> None:
        ex = Executor(False)
        gate = threading.Event()
        first = asyncio.ensure_future(ex.call(gate.wait, 5))
        await asyncio.sleep(0.02)  # the model thread is held
        queued = asyncio.ensure_future(ex.call(ran.append, 1, deadline=time.monotonic() + 30))
        await asyncio.sleep(0.02)
        t0 = time.monotonic()
        assert ex.fail_queued() == 1
        with pytest.raises(CallTimeout) as info:
            await queued
        assert time.monotonic() - t0 < 1.0
        assert not info.value.job.started
        gate.set()
        assert await first
        await asyncio.sleep(0.05)
        assert ran == []  # it never runs
        ex.shutdown()

    asyncio.run(run())


def test_a_loaded_model_leaves_the_start_up_objects_out_of_garbage_collection(
    tmp_path: Any,
) -> None:
    """Issue 18 (open-loop p99 at half of peak): full collections scanned every module and
    the model on each pass, up to 13 ms each, 22 times in 10 s at 18k req/s; once the model is
    ready, what start-up made is frozen (gc.freeze) and collections scan only new objects."""
    import gc

    from endpointkit.serving.runtime import ModelRuntime

    gc.unfreeze()
    settings = Settings(model_dir=str(tmp_path))
    runtime = ModelRuntime(settings, RequestLog("errors", 1.0, None, io.BytesIO()), Metrics(None))
    try:
        runtime._installed(Sum())
        assert runtime.ready
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
        if runtime.executor is not None:
            runtime.executor.shutdown()


def test_a_batched_request_is_answered_once_it_could_no_longer_finish_in_time() -> None:
    """Issue 12's deadline rule for batched requests too: one queued in the batcher behind a
    running batch was answered at its deadline (asyncio.wait_for), so its 503 left after the
    timeout; now at deadline - (a call's expected duration) - the margin, and it never runs."""
    from endpointkit.serving.batching import Batcher, Dropped, Executor

    seen: list[Any] = []
    gate = threading.Event()

    def predict(instances: Any, parameters: Any) -> Any:
        if instances == ["slow"]:
            gate.wait(5)
        elif instances != ["warm"]:
            seen.extend(instances)
        return list(instances)

    async def run() -> None:
        ex = Executor(False)
        batcher = Batcher(predict, ex, 8, 0.0)
        await ex.call(time.sleep, 0.4)  # a call takes about 0.4 s
        first = asyncio.ensure_future(batcher.submit(["slow"], None))
        await asyncio.sleep(0.02)  # its batch holds the model thread
        deadline = time.monotonic() + 1.2
        with pytest.raises(Dropped) as info:
            await batcher.submit(["late"], None, deadline=deadline)
        answered = time.monotonic()
        assert answered < deadline, f"answered {answered - deadline:.3f} s after the deadline"
        assert not info.value.gone
        gate.set()
        assert await first == ["slow"]
        assert await batcher.submit(["next"], None) == ["next"]
        assert seen == ["next"]  # the late one never ran
        batcher.close()
        ex.shutdown()

    asyncio.run(run())


def test_a_stuck_model_thread_answers_the_batchers_queue_at_once() -> None:
    """Issue 12 (hung predictor) with batching: requests queued in the batcher behind the
    stuck batch waited for their deadlines; ``fail_queued`` answers them now."""
    from endpointkit.serving.batching import Batcher, BatchTimeout, Dropped, Executor

    gate = threading.Event()

    def predict(instances: Any, parameters: Any) -> Any:
        gate.wait(5)
        return list(instances)

    async def run() -> None:
        ex = Executor(False)
        batcher = Batcher(predict, ex, 1, 0.0)  # one request per batch: the second queues
        running = asyncio.ensure_future(
            batcher.submit(["a"], None, deadline=time.monotonic() + 0.3)
        )
        await asyncio.sleep(0.02)
        queued = asyncio.ensure_future(batcher.submit(["b"], None, deadline=time.monotonic() + 30))
        await asyncio.sleep(0.02)
        t0 = time.monotonic()
        assert batcher.fail_queued() == 1
        with pytest.raises(Dropped):
            await queued
        assert time.monotonic() - t0 < 1.0
        with pytest.raises(BatchTimeout):  # the running one: at its deadline, not before
            await running
        gate.set()
        batcher.close()
        ex.shutdown()

    asyncio.run(run())


def test_a_batch_queued_behind_a_stuck_call_is_answered_503_not_retried() -> None:
    """A batch whose call waited behind a stuck one (a hung ``preprocess``) and was failed by
    ``Executor.fail_queued`` got CallTimeout as if the predictor had failed: a 500, or for
    several requests a retry in halves behind the same stuck call. It is now Dropped (503)."""
    from endpointkit.serving.batching import Batcher, Dropped, Executor

    calls: list[Any] = []

    def predict(instances: Any, parameters: Any) -> Any:
        calls.append(instances)
        return list(instances)

    async def run() -> None:
        ex = Executor(False)
        batcher = Batcher(predict, ex, 8, 0.0)
        gate = threading.Event()
        stuck = asyncio.ensure_future(ex.call(gate.wait, 5))
        await asyncio.sleep(0.02)
        waiting = [asyncio.ensure_future(batcher.submit([i], None)) for i in range(3)]
        await asyncio.sleep(0.05)  # their batch's call is queued behind the stuck one
        assert ex.fail_queued() == 1
        for future in waiting:
            with pytest.raises(Dropped):
                await future
        gate.set()
        assert await stuck
        await asyncio.sleep(0.05)
        assert calls == []  # nothing ran again behind it
        batcher.close()
        ex.shutdown()

    asyncio.run(run())
