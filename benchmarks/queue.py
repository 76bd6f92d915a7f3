"""The local backend's durable queue (issue 17): throughput of N queued tiny requests against
the same N through synchronous `invoke`, enqueue latency, and the kill -9 count.

Both paths run against one gateway and one version (one worker process) of a tiny model whose
predictor answers at once. Synchronous: N `Endpoint.invoke` calls from C client threads.
Queued: N `Endpoint.invoke_async` calls from one thread while the gateway dispatches (at most C
at once to the version: `max_concurrent_invocations_per_replica=C`), timed from the first
enqueue until the last request is done. Then a kill -9 of the gateway with 1,000 requests
queued behind a slower model, a restart, and the counts. One run; results/queue.md.

    python -m benchmarks queue [--requests 10000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"

PREDICTOR = """
import os, time

class Tiny:
    def load(self, model_dir):
        self.root = model_dir
        path = os.path.join(model_dir, "sleep.txt")
        self.sleep = float(open(path).read()) if os.path.exists(path) else 0.0

    def predict(self, instances, parameters=None):
        if self.sleep:
            time.sleep(self.sleep)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
            fd = os.open(os.path.join(self.root, "calls.log"), flags)
            os.write(fd, "".join(f"{i}\\n" for i in instances).encode())
            os.close(fd)
        return instances
"""


def _model(root: Path, sleep_s: float = 0.0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tiny.py").write_text(PREDICTOR)
    if sleep_s:
        (root / "sleep.txt").write_text(str(sleep_s))
    return root


def _body(i: int) -> bytes:
    return json.dumps({"instances": [i]}).encode()


def throughput(backend: object, requests: int, concurrency: int, work: Path) -> dict[str, float]:
    from endpointkit import Endpoint, VersionSpec
    from endpointkit.spec import AsyncInference

    spec = VersionSpec(
        name="v1",
        model=str(_model(work / "tiny")),
        predictor="tiny:Tiny",
        async_inference=AsyncInference(
            output_path=f"file://{work}/out", max_concurrent_invocations_per_replica=concurrency
        ),
    )
    ep = Endpoint.create("bench", spec, backend=backend, timeout=120)  # type: ignore[arg-type]
    for i in range(200):  # warm both paths
        ep.invoke(_body(i))
    warm = [ep.invoke_async(_body(i), inference_id=f"warm-{i}") for i in range(200)]
    for job in warm:
        job.result(timeout=60)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda i: ep.invoke(_body(i)), range(requests)))
    sync_s = time.perf_counter() - started

    latencies: list[float] = []
    started = time.perf_counter()
    for i in range(requests):
        t0 = time.perf_counter()
        ep.invoke_async(_body(i), inference_id=f"q-{i}")
        latencies.append(time.perf_counter() - t0)
    enqueued_s = time.perf_counter() - started
    queue = backend.queue  # type: ignore[attr-defined]
    while queue.counts("bench")["done"] < requests + len(warm):
        time.sleep(0.005)
    queued_s = time.perf_counter() - started
    counts = queue.counts("bench")
    latencies.sort()
    return {
        "requests": requests,
        "concurrency": concurrency,
        "sync_s": sync_s,
        "sync_rps": requests / sync_s,
        "queued_s": queued_s,
        "queued_rps": requests / queued_s,
        "ratio": (requests / queued_s) / (requests / sync_s),
        "enqueue_s": enqueued_s,
        "enqueue_p50_ms": statistics.median(latencies) * 1000,
        "enqueue_p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "enqueue_max_ms": latencies[-1] * 1000,
        "dead": counts["dead"],
    }


def kill9(work: Path, total: int = 1000) -> dict[str, object]:
    from endpointkit import Endpoint, VersionSpec
    from endpointkit.adapters.local import LocalBackend
    from endpointkit.adapters.local.commands import main as local_main
    from endpointkit.spec import AsyncInference

    root = _model(work / "slow", sleep_s=0.004)
    backend = LocalBackend(home=work / "home-kill9", seed=1)
    try:
        spec = VersionSpec(
            name="v1",
            model=str(root),
            predictor="tiny:Tiny",
            async_inference=AsyncInference(
                output_path=f"file://{work}/kill9-out", max_concurrent_invocations_per_replica=2
            ),
        )
        ep = Endpoint.create("kill9", spec, backend=backend, timeout=120)
        for i in range(total):
            ep.invoke_async(_body(i), inference_id=f"k{i}")
        pid = backend.store.gateway().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        at_kill = backend.queue.counts("kill9")
        in_flight = {r.inference_id for r in backend.queue.rows("kill9") if r.state == "running"}
        restarted = time.perf_counter()
        backend._gateway = None
        backend.ensure_gateway()
        deadline = time.monotonic() + 300
        while backend.queue.counts("kill9")["done"] < total and time.monotonic() < deadline:
            time.sleep(0.05)
        drained_s = time.perf_counter() - restarted
        rows = backend.queue.rows("kill9")
        seen = Counter((root / "calls.log").read_text().split())
        twice = {f"k{i}" for i, n in seen.items() if n > 1}
        return {
            "total": total,
            "at_kill": at_kill,
            "in_flight_at_kill": len(in_flight),
            "after_restart": dict(Counter(r.state for r in rows)),
            "completions_per_request": sorted({r.completions for r in rows}),
            "results_written": sum(
                (work / "kill9-out" / f"{r.inference_id}.out").exists() for r in rows
            ),
            "model_calls": sum(seen.values()),
            "requests_the_model_saw": len(seen),
            "delivered_twice": len(twice),
            "delivered_twice_were_in_flight": twice <= in_flight,
            "restart_to_drained_s": drained_s,
        }
    finally:
        backend.close()
        local_main(["stop", "--home", str(work / "home-kill9"), "--output", "json"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks queue")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    from endpointkit.adapters.local import LocalBackend
    from endpointkit.adapters.local.commands import main as local_main

    with tempfile.TemporaryDirectory(prefix="ek-queue-bench-") as tmp:
        work = Path(tmp)
        backend = LocalBackend(home=work / "home", seed=1)
        try:
            figures = throughput(backend, args.requests, args.concurrency, work)
        finally:
            backend.close()
            local_main(["stop", "--home", str(work / "home"), "--output", "json"])
        killed = kill9(work)
    load = [round(x, 2) for x in os.getloadavg()]
    report = {"throughput": figures, "kill9": killed, "loadavg": load, "cpus": os.cpu_count()}
    report["args"] = {"requests": args.requests, "concurrency": args.concurrency}
    report["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "queue.json").write_text(json.dumps(report, indent=2, default=str))
    text = render(report)
    (RESULTS / "queue.md").write_text(text)
    print(text)
    return 0


def render(r: dict[str, Any]) -> str:
    """benchmarks/results/queue.md from one run's figures."""
    t, k, a = r["throughput"], r["kill9"], r["args"]
    once = k["completions_per_request"] == [1]
    twice = k["delivered_twice"]
    lines = [
        "# Local durable queue (issue 17), one run",
        "",
        f"Written by `python -m benchmarks queue --requests {a['requests']} --concurrency "
        f"{a['concurrency']}` (benchmarks/queue.py; raw numbers in queue.json), {r['date']}, "
        f"{r['cpus']} CPUs, load average at the end {r['loadavg']}. One gateway, one version "
        "(one worker process) of a tiny model that answers at once.",
        "",
        f"## Throughput: {t['requests']:,} tiny requests",
        "",
        "| path | how | seconds | requests/s |",
        "|---|---|---:|---:|",
        f"| synchronous | `Endpoint.invoke` from {t['concurrency']} client threads | "
        f"{t['sync_s']:.1f} | {t['sync_rps']:.0f} |",
        f"| queued | `Endpoint.invoke_async` from 1 thread while the gateway dispatches, at most "
        f"{t['concurrency']} at once to the version; first enqueue to last answer written | "
        f"{t['queued_s']:.1f} | {t['queued_rps']:.0f} |",
        "",
        f"Queued / synchronous: **{t['ratio']:.2f}x** (goal >= 0.8x); dead-lettered: {t['dead']}.",
        "",
        f"## Enqueue latency ({t['requests']:,} calls of `invoke_async`, one SQLite transaction "
        "each)",
        "",
        "| p50 | p99 | max |",
        "|---:|---:|---:|",
        f"| {t['enqueue_p50_ms']:.2f} ms | {t['enqueue_p99_ms']:.2f} ms | "
        f"{t['enqueue_max_ms']:.1f} ms |",
        "",
        f"## kill -9 of the gateway with {k['total']:,} requests queued",
        "",
        "Requests queued behind a slower model, then `kill -9` of the gateway; the next command "
        "starts a new gateway, which puts in-flight requests back in the queue and dispatches "
        "everything.",
        "",
        "| at the kill | | after the restart | |",
        "|---|---:|---|---:|",
        f"| queued | {k['at_kill']['queued']} | done | {k['after_restart'].get('done', 0):,} |",
        f"| running (in flight) | {k['at_kill']['running']} | dead-lettered | "
        f"{k['after_restart'].get('dead', 0)} |",
        f"| done | {k['at_kill']['done']} | completions per request | "
        f"{'exactly 1 (all)' if once else k['completions_per_request']} |",
        f"| | | answers written | {k['results_written']:,} |",
        f"| | | restart to all done | {k['restart_to_drained_s']:.1f} s |",
        "",
        f"The model saw {k['requests_the_model_saw']:,} distinct requests in "
        f"{k['model_calls']:,} calls: {twice} delivered twice"
        + (
            ", each one in flight at the kill (its first delivery may or may not have run). "
            if k["delivered_twice_were_in_flight"]
            else ", NOT all of them in flight at the kill. "
        )
        + "Completion is exactly once; delivery to the model is at-least-once for requests in "
        "flight at a kill (the inference id travels as `X-Amzn-SageMaker-Inference-Id`, so a "
        "model can deduplicate). The same check runs as a test: "
        "`tests/local/test_queue.py::test_kill_9_with_1000_queued_completes_each_exactly_once`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
