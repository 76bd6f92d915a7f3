"""Reliability under faults (issue 12): `python -m benchmarks faults` or `nox -s faults`.

Every scenario runs real processes on 127.0.0.1 and is bounded in time; results go to
benchmarks/results/faults.md and .json, written from this run only. The figures:

- hostile: >= 10,000 generated hostile requests per contract (SageMaker, Vertex, OIP) at one
  server process: no 5xx but the intended 503/504, no crash, RSS growth < 20 MB;
- hung: a predictor call that never returns: health 503 within timeout + 1 s; with 2
  workers, requests succeed again within 10 s;
- kill9: kill -9 of a version under load through the gateway: no POST replayed, failed
  requests <= those in flight on that version;
- slowloris: 200 connections dripping a header for 30 s: legitimate requests' p99 < 50 ms;
- overload: 1,000 connections on a 100 ms model: no request waits past its timeout, every 503
  has Retry-After, latency < 1 s once the load stops;
- sigterm: SIGTERM with 50 in flight, one worker and two: each gets 200 or 503.

`--quick` scales every scenario down (a smoke run; its results are not the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent.parent / "results"
SCENARIOS = ("hostile", "hung", "kill9", "slowloris", "overload", "sigterm")


def _hostile(tmp: Path, per_contract: int, rng_seed: int) -> dict[str, Any]:
    from . import hostile
    from ._proc import group_rss_mb, model_dir, request_sync, serving

    folder, predictor = model_dir(tmp, "sklearn")
    args = ["--model-dir", str(folder), "--workers", "1", "--timeout", "10"]
    if predictor:
        args += ["--predictor", predictor]
    out: dict[str, Any] = {"per_contract": per_contract, "seed": rng_seed, "contracts": {}}
    repro = RESULTS / "faults-reproducers"
    shutil.rmtree(repro, ignore_errors=True)
    with serving(tmp, args, {"PYTHONPATH": str(folder)}) as server:
        warm = (
            b"POST /invocations HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\n"
            b"content-length: 12\r\n\r\n[[1,2,3,4]]\n"
        )
        for _ in range(300):
            request_sync(server.port, warm, 10)
        rss_before = group_rss_mb(server.proc.pid)
        # Hypothesis generates the next contract's examples in another process while this
        # one sends the current contract's (on a loaded machine generation is the slower half).
        sent: dict[str, Any] = {}
        with ProcessPoolExecutor(max_workers=1) as pool:
            pending = {
                c: pool.submit(hostile.generate, c, per_contract, rng_seed)
                for c in hostile.CONTRACTS
            }
            for contract, future in pending.items():
                waited = time.monotonic()
                examples = future.result()
                sent[contract] = examples
                started = time.monotonic()
                generated_s = started - waited  # the wait for generation, not its whole time
                result = asyncio.run(hostile.send_all(server.port, examples))
                failures = result.pop("failures")
                for n, failure in enumerate(failures[:50]):
                    repro.mkdir(parents=True, exist_ok=True)
                    (repro / f"{contract}-{n}.http").write_bytes(failure["raw"])
                result["failures"] = len(failures)
                result["failure_samples"] = [
                    {
                        "status": f["status"],
                        "answer": f["answer"],
                        "raw_b64": base64.b64encode(f["raw"][:2000]).decode(),
                    }
                    for f in failures[:5]
                ]
                result["examples"] = len(examples)
                result["waited_for_generation_s"] = round(generated_s, 1)
                result["send_s"] = round(time.monotonic() - started, 1)
                out["contracts"][contract] = result
        time.sleep(1.0)
        rss_after = group_rss_mb(server.proc.pid)
        # The same requests once more: a leak grows again, a high-water mark does not.
        for examples in sent.values():
            asyncio.run(hostile.send_all(server.port, examples))
        time.sleep(1.0)
        rss_second = group_rss_mb(server.proc.pid)
        alive = server.proc.poll() is None
        healthy = server.get("/ping") == 200
        out.update(
            rss_before_mb=round(rss_before, 1),
            rss_after_mb=round(rss_after, 1),
            rss_growth_mb=round(rss_after - rss_before, 1),
            rss_second_pass_growth_mb=round(rss_second - rss_after, 1),
            alive=alive,
            healthy_after=healthy,
            worker_restarts=server.log().count("starting a new one"),
        )
    out["failures"] = sum(c["failures"] for c in out["contracts"].values())
    out["met"] = (
        out["failures"] == 0
        and alive
        and healthy
        and out["rss_growth_mb"] < 20
        and all(c["examples"] >= 10_000 for c in out["contracts"].values())
    )
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from . import scenarios

    quick = args.quick
    tmp = Path(tempfile.mkdtemp(prefix="ek-faults-"))
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, "
        f"Python {platform.python_version()}",
        "quick": quick,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "scenarios": {},
    }
    chosen = args.only or list(SCENARIOS)
    try:
        for name in chosen:
            started = time.monotonic()
            print(f"faults: {name} ...", file=sys.stderr, flush=True)
            folder = tmp / name
            folder.mkdir()
            try:
                if name == "hostile":
                    result = _hostile(folder, 300 if quick else args.per_contract, args.seed)
                elif name == "hung":
                    result = scenarios.hung(folder)
                elif name == "kill9":
                    result = scenarios.kill9(folder, seconds=4.0 if quick else 8.0)
                elif name == "slowloris":
                    result = scenarios.slowloris(
                        folder, 50 if quick else 200, 8.0 if quick else 30.0
                    )
                elif name == "overload":
                    result = scenarios.overload(
                        folder, 200 if quick else 1000, 4.0 if quick else 10.0
                    )
                else:
                    result = scenarios.sigterm(folder)
            except Exception as exc:  # a scenario that could not run is reported, not hidden
                result = {"met": False, "error": f"{type(exc).__name__}: {exc}"}
            result["duration_s"] = round(time.monotonic() - started, 1)
            results["scenarios"][name] = result
            print(
                f"faults: {name}: met={result['met']} ({result['duration_s']} s)",
                file=sys.stderr,
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["load_average"] = [round(x, 1) for x in os.getloadavg()]
    return results


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render(r: dict[str, Any]) -> str:
    s = r["scenarios"]
    lines = [
        "# Reliability under faults (issue 12)",
        "",
        f"Machine: {r['machine']}; load average at the end {r['load_average']}. Run started "
        f"{r['started']}{' (QUICK: scaled down, not the figures)' if r['quick'] else ''}. "
        "Written by `nox -s faults` (`python -m benchmarks faults`) from this run only.",
        "",
        "| scenario | target | measured | met |",
        "|---|---|---|---|",
    ]

    def row(name: str, target: str, measured: str) -> None:
        result = s.get(name)
        if result is None:
            return
        if "error" in result:
            measured = f"could not run: {result['error']}"
        lines.append(f"| {name} | {target} | {measured} | {'yes' if result['met'] else '**no**'} |")

    h = s.get("hostile", {})
    if "contracts" in h:
        per = ", ".join(
            f"{k} {v['examples']} ({v['failures']} failed)" for k, v in h["contracts"].items()
        )
        row(
            "hostile",
            ">= 10,000 per contract; 0 5xx from input; 0 crashes; RSS growth < 20 MB",
            f"{per}; alive {h['alive']}, healthy {h['healthy_after']}, worker restarts "
            f"{h['worker_restarts']}; RSS {h['rss_before_mb']} -> {h['rss_after_mb']} MB "
            f"(**{h['rss_growth_mb']:+.1f} MB**); the same requests again: "
            f"{h.get('rss_second_pass_growth_mb', float('nan')):+.1f} MB",
        )
    else:
        row("hostile", ">= 10,000 per contract", "")
    g = s.get("hung", {})
    if "workers_1" in g:
        row(
            "hung",
            f"health 503 within timeout ({g['timeout_s']:g} s) + 1 s; 2 workers: success < 10 s",
            f"1 worker: /ping {g['workers_1']['health_status']} after "
            f"**{_fmt(g['health_503_within_s'])} s**; 2 workers: "
            f"{g['workers_2']['requests_failed']} of "
            f"{g['workers_2']['requests_failed'] + g['workers_2']['requests_served']} requests "
            f"failed, the last **{_fmt(g['recovered_within_s'])} s** after the hang began",
        )
    else:
        row("hung", "", "")
    k = s.get("kill9", {})
    if "outcomes" in k:
        row(
            "kill9",
            "0 replayed POSTs; failed <= in flight on the version",
            f"{k['requests']} requests ({k['concurrency']} at a time, 2 versions): **"
            f"{k['replayed_posts']} replayed**, **{k['failed']} failed**, all handed to v1 "
            f"before it died ({k['failed_not_on_v1']} elsewhere); the gateway counted "
            f"{k['gateway_in_flight_on_v1']} in flight on v1 just before the SIGKILL, "
            f"{k['client_in_flight']} were in flight at the client; outcomes {k['outcomes']}",
        )
    else:
        row("kill9", "", "")
    w = s.get("slowloris", {})
    if "legit_p99_ms" in w:
        row(
            "slowloris",
            f"{w['slow_connections']} slow connections for {w['seconds']:g} s: p99 < 50 ms",
            f"legit p50 {_fmt(w['legit_p50_ms'])} ms, **p99 {_fmt(w['legit_p99_ms'])} ms** over "
            f"{w['legit_requests']} requests ({w['legit_errors']} errors); "
            f"{w['slow_connections_cut_by_server']} slow connections cut by the server",
        )
    else:
        row("slowloris", "", "")
    o = s.get("overload", {})
    if "statuses" in o:
        row(
            "overload",
            f"{o['connections']} connections, 100 ms model, timeout {o['timeout_s']:g} s: none "
            "waits past it; every 503 has Retry-After; < 1 s after",
            f"answers {o['statuses']} (ends {o['ends']}); by the server's clock (its latency "
            f"histogram): **{o['server_past_timeout']}** of {o['server_answers']} past the "
            f"timeout; 503 without Retry-After: **{o['503_without_retry_after']}**; after the "
            f"load: max **{_fmt(o['after_load_max_s'], 3)} s**. Seen by the one-process load "
            f"client: max {_fmt(o['client_max_wait_s'])} s ({o['client_past_timeout']} past "
            f"the timeout), longest connect {_fmt(o['client_max_connect_s'])} s, its own event "
            f"loop up to {_fmt(o['client_loop_max_lag_s'])} s late",
        )
    else:
        row("overload", "", "")
    t = s.get("sigterm", {})
    if "workers_1" in t:
        row(
            "sigterm",
            f"{t['in_flight']} in flight: each 200 or 503",
            f"1 worker: {t['workers_1']} (exit {t['workers_1_exit']}); 2 workers: "
            f"{t['workers_2']} (exit {t['workers_2_exit']})",
        )
    else:
        row("sigterm", "", "")
    lines += [
        "",
        "Reproducers of hostile failures (if any) are in benchmarks/results/faults-reproducers/"
        " (raw bytes, send with `nc 127.0.0.1 PORT < FILE`). Durations: "
        + ", ".join(f"{n} {v.get('duration_s')} s" for n, v in s.items())
        + ".",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks faults", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="scaled down: a smoke run")
    parser.add_argument("--only", nargs="*", choices=SCENARIOS)
    parser.add_argument("--per-contract", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    results = run(args)
    text = render(results)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "faults.md").write_text(text)
        (RESULTS / "faults.json").write_text(json.dumps(results, indent=2, default=str))
    return 0 if all(v.get("met") for v in results["scenarios"].values()) else 1
