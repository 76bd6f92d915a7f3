"""`python -m benchmarks gpu`: a TorchScript text encoder on a GPU, alone, through
`TorchScriptPredictor.predict`, and served, with and without dynamic batching (issue 18 item 7).

The model (encoder.py, seed 18): 6 pre-norm transformer blocks, d_model 384, 6 heads, ff 1536,
vocab 30522, 128 tokens, mean-pooled to 384 floats; fp16 weights on CUDA, fp32 on CPU; scripted
and saved as ``model.pt``, which the server's built-in TorchScript handler loads.

Sections, the same 128-token rows everywhere:

1. model alone at batch 1 and 64 (inputs already on the device, synchronised around each timed
   run) and ``TorchScriptPredictor.predict`` at batch 1 and 64 in process (numpy in and out);
2. served (``python -m endpointkit.serving``, wrk): without batching (1 worker), with batching
   (max batch 64, 2 ms) at 1 worker and at N workers (``--workers``, default 4), each with JSON
   bodies, npy bodies (``application/x-npy`` in and out) and OIP v2 binary tensors. A mode the
   server answers 415 is skipped with a message. Before timing, the timed body and 64
   concurrent distinct rows are compared with in-process results (fp16 tolerance on CUDA);
   under load wrk checks every answer's status and shape;
3. ratios: served batched rate / predictor batch-64 rate, JSON against 0.8, binary against 0.9.

Every rate is the worst of the repeats. Results (benchmarks/results/gpu.md, gpu.json) are
written only from a CUDA run; ``--device cpu`` prints (``--write-cpu`` writes
gpu-cpu-smoke.md/json instead). ``--out DIR`` writes copies there too (a device machine's $OUT).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import bodies

RESULTS = Path(__file__).resolve().parents[1] / "results"
FULL = {"layers": 6, "d_model": 384, "heads": 6, "ff": 1536, "vocab": 30522, "tokens": 128}
TINY = {"layers": 1, "d_model": 64, "heads": 4, "ff": 128, "vocab": 1000, "tokens": 128}
BATCH = 64
SAMPLE = 64  # distinct rows sent concurrently to each server before timing


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks gpu", description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--quick", action="store_true", help="1 s per point, one repeat (~1 min)")
    p.add_argument("--workers", type=int, default=4, help="HTTP workers of the last point")
    p.add_argument("--modes", default=",".join(bodies.MODES), help="json,npy,oip")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--duration", type=float, default=None, help="seconds per timed wrk run")
    p.add_argument("--tiny", action="store_true", help="1 block, d 64 (default with cpu+quick)")
    p.add_argument("--write-cpu", action="store_true", help="write gpu-cpu-smoke.md/json")
    p.add_argument("--out", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in args.modes if m not in bodies.MODES]
    if bad:
        p.error(f"unknown mode(s) {bad}; choose from {', '.join(bodies.MODES)}")
    if args.workers < 1:
        p.error("--workers must be at least 1")
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.duration = args.duration or (1.0 if args.quick else 4.0)
    args.warmup = 0.0 if args.quick else 1.0
    args.inproc_s = 0.3 if args.quick else 1.0
    if args.device == "cpu" and args.quick:
        args.tiny = True
        args.workers = min(args.workers, 2)
    return args


def _machine(torch: Any, device: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": device,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "loadavg_start": list(os.getloadavg()),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def _timed(
    fn: Callable[[], Any], rows: int, sync: Callable[[], None], seconds: float, repeats: int
) -> dict[str, Any]:
    """Calls per repeat sized to ~``seconds``; rows/s of each repeat; the worst is the figure."""
    for _ in range(3):
        fn()
    sync()
    t0 = time.perf_counter()
    probe = 0
    while time.perf_counter() - t0 < min(0.2, seconds / 2):
        fn()
        probe += 1
    sync()
    per_call = (time.perf_counter() - t0) / probe
    calls = max(3, int(seconds / per_call))
    rates = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        rates.append(rows * calls / (time.perf_counter() - t0))
    return {
        "rate": min(rates),
        "rate_median": statistics.median(rates),
        "rate_max": max(rates),
        "calls": calls,
    }


def _in_process(torch: Any, model_dir: Path, ids: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Section 1: the model alone and the predictor, batch 1 and 64; and reference outputs."""
    import numpy as np

    from endpointkit.serving.handlers.torch import TorchScriptPredictor

    device = torch.device(args.device)
    cuda = args.device == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    model = torch.jit.load(str(model_dir / "model.pt"), map_location=device).eval()
    predictor = TorchScriptPredictor()
    predictor.load(str(model_dir))
    if str(predictor.device) != str(device):
        raise RuntimeError(f"the predictor loaded onto {predictor.device}, expected {device}")
    arrays = {b: np.ascontiguousarray(ids[:b], dtype=np.float32) for b in (1, BATCH)}
    out: dict[str, Any] = {"rows": []}
    with torch.inference_mode():
        for b in (1, BATCH):
            x = torch.as_tensor(arrays[b], device=device)
            row = _timed(functools.partial(model, x), b, sync, args.inproc_s, args.repeats)
            out["rows"].append({"what": "model alone (tensors on the device)", "batch": b, **row})
            print(f"  model alone      batch {b:>2}: {row['rate']:>10.0f} rows/s", flush=True)
    for b in (1, BATCH):
        a = arrays[b]
        row = _timed(functools.partial(predictor.predict, a), b, sync, args.inproc_s, args.repeats)
        out["rows"].append({"what": "TorchScriptPredictor.predict (numpy)", "batch": b, **row})
        print(f"  predictor        batch {b:>2}: {row['rate']:>10.0f} rows/s", flush=True)
    # reference outputs: the predictor at batch 64 (what the batched server runs)
    ref = np.concatenate(
        [
            predictor.predict(np.asarray(ids[i : i + BATCH], np.float32))
            for i in range(0, len(ids), BATCH)
        ]
    )
    alone = predictor.predict(arrays[1])
    out["b1_vs_b64_max_abs"] = float(np.max(np.abs(alone[0] - ref[0])))
    out["reference"] = ref
    out["predictor_b64"] = next(
        r["rate"] for r in out["rows"] if r["batch"] == BATCH and "predict" in r["what"]
    )
    return out


async def _concurrent(url: str, mode: str, ids: Any) -> list[tuple[int, bytes, dict[str, str]]]:
    import httpx

    limits = httpx.Limits(max_connections=len(ids), max_keepalive_connections=len(ids))
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one(row: Any) -> tuple[int, bytes, dict[str, str]]:
            req = bodies.request(mode, row[None, :])
            r = await client.post(req.path, content=req.body, headers=req.headers)
            return r.status_code, r.content, dict(r.headers)

        return list(await asyncio.gather(*(one(row) for row in ids)))


def _check(url: str, mode: str, ids: Any, ref: Any, tol: float) -> tuple[bytes | None, str]:
    """The timed body's answer (what wrk compares lengths with) and a note; ``None`` and the
    reason when the server does not take this mode (415). Raises on a wrong answer."""
    import httpx
    import numpy as np

    req = bodies.request(mode, ids[:1])
    r = httpx.post(url + req.path, content=req.body, headers=req.headers, timeout=120)
    if r.status_code == 415:
        return None, f"415 from the server: {r.text[:200]}"
    if r.status_code != 200:
        raise RuntimeError(f"{mode}: {r.status_code} {r.text[:300]}")
    first = r.content
    answers = [(r.status_code, r.content, dict(r.headers))]
    answers += asyncio.run(_concurrent(url, mode, ids[:SAMPLE]))
    worst = 0.0
    for i, (status, body, headers) in enumerate(answers):
        want = ref[0 if i == 0 else i - 1]
        if status != 200:
            raise RuntimeError(f"{mode}: row {i}: {status} {body[:300]!r}")
        got = bodies.decode(mode, body, headers)
        if got.shape != (1, want.shape[0]):
            raise RuntimeError(f"{mode}: row {i}: shape {got.shape}, expected (1, {want.shape[0]})")
        err = float(np.max(np.abs(got[0] - want)))
        worst = max(worst, err)
        if not np.allclose(got[0], want, atol=tol, rtol=tol):
            raise RuntimeError(f"{mode}: row {i}: max |served - in-process| {err:.3g} > {tol}")
    return (
        first,
        f"{len(answers)} answers (64 concurrent distinct rows) within {tol}: max diff {worst:.2g}",
    )


def _served(
    model_dir: Path, ids: Any, ref: Any, args: argparse.Namespace, errors: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Section 2: each server configuration, each mode."""
    from benchmarks.serving import loadgen, peers

    tol = 2e-2 if args.device == "cuda" else 1e-4
    width = ref.shape[1]
    points = [(1, False), (1, True)]
    if args.workers > 1:
        points.append((args.workers, True))
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for workers, batched in points:
        label = f"{workers} worker{'s' if workers > 1 else ''}, " + (
            f"batched ({BATCH}, 2 ms)" if batched else "unbatched"
        )
        spec = peers.endpointkit(None, model_dir, workers=workers, name=label)
        if batched:
            spec.cmd += ["--max-batch-size", str(BATCH), "--max-latency-ms", "2"]
        if args.device == "cpu":
            spec.env.update({"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"})
        spec.timeout_s = 120.0  # a GPU worker is ready in ~20 s
        conns = min(512, 128 * workers)
        threads = min(4, workers)
        print(f"  {label}: wrk -t{threads} -c{conns}", flush=True)
        try:  # a point that fails (start, wrk) is recorded; its server is stopped; on we go
            t_start = time.monotonic()
            with peers.start(spec, None) as peer:
                started_s = time.monotonic() - t_start
                print(f"    ready in {started_s:.1f} s", flush=True)
                for mode in args.modes:
                    try:
                        expected, note = _check(peer.url, mode, ids, ref, tol)
                    except Exception as exc:  # a wrong answer: recorded, the run goes on
                        errors.append(f"{label} {mode}: {exc}")
                        print(f"    {mode:<5} FAILED the answer check: {exc}", flush=True)
                        continue
                    if expected is None:
                        skipped.append({"point": label, "mode": mode, "reason": note})
                        print(f"    {mode:<5} SKIPPED: {note}", flush=True)
                        continue
                    req = bodies.request(mode, ids[:1])
                    check = bodies.lua_check(mode, width)

                    once = functools.partial(
                        loadgen.wrk,
                        peer.url + req.path,
                        "POST",
                        req.body,
                        expected,
                        connections=conns,
                        cpu=None,
                        threads=threads,
                        headers=req.headers,
                        check=check,
                    )

                    if args.warmup:
                        once(duration_s=args.warmup)
                    runs, cpu_us = [], []
                    for _ in range(args.repeats):
                        cpu0 = peers.cpu_seconds(peer.proc.pid)
                        run = once(duration_s=args.duration)
                        cpu = peers.cpu_seconds(peer.proc.pid) - cpu0
                        cpu_us.append(cpu * 1e6 / max(1, run.good + run.bad))
                        runs.append(run)
                    row = {
                        "point": label,
                        "workers": workers,
                        "batched": batched,
                        "mode": mode,
                        "rps": min(r.rps for r in runs),
                        "rps_median": statistics.median(r.rps for r in runs),
                        "rps_max": max(r.rps for r in runs),
                        "p50_ms": max(r.p50_ms for r in runs),
                        "p99_ms": max(r.p99_ms for r in runs),
                        "cpu_us": max(cpu_us),
                        "good": sum(r.good for r in runs),
                        "bad": sum(r.bad + r.errors for r in runs),
                        "connections": conns,
                        "checked": note,
                        "server_start_s": round(started_s, 1),
                    }
                    rows.append(row)
                    if row["bad"]:
                        errors.append(f"{label} {mode}: {row['bad']} bad answers under load")
                    print(
                        f"    {mode:<5} {row['rps']:>9.0f} req/s  p50 {row['p50_ms']:.1f} ms  "
                        f"p99 {row['p99_ms']:.1f} ms  {row['cpu_us']:.0f} us CPU/req  "
                        f"bad {row['bad']}  ({note})",
                        flush=True,
                    )
        except Exception as exc:
            errors.append(f"{label}: {type(exc).__name__}: {exc}"[:600])
            print(f"    FAILED: {type(exc).__name__}: {exc}"[:600], flush=True)
    return rows, skipped


def _markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    gpu = m.get("gpu", "none (CPU run: not GPU figures)")
    cfg = res["model"]
    lines = [
        "# GPU benchmark (`python -m benchmarks gpu`)",
        "",
        f"Machine: {gpu}; {m['cpus']} CPUs; torch {m['torch']}"
        + (f" (CUDA {m['cuda']})" if m.get("cuda") else "")
        + f"; Python {m['python']}; load average {m['loadavg_start'][0]:.2f} at the start, "
        f"{m['loadavg_end'][0]:.2f} at the end; {res['seconds']:.0f} s in all.",
        "",
        f"Model: {cfg['layers']} pre-norm transformer blocks, d_model {cfg['d_model']}, "
        f"{cfg['heads']} heads, ff {cfg['ff']}, vocab {cfg['vocab']}, {cfg['tokens']} tokens, "
        f"mean-pooled; {cfg['dtype']}, TorchScript (seed 18). One row (128 token ids) per "
        "request. Every rate is the worst of "
        f"{res['args']['repeats']} repeats ({res['args']['duration']:.0f} s each when served).",
        "",
        "## In process",
        "",
        "| what | batch | rows/s (worst) | median | best |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in res["in_process"]["rows"]:
        lines.append(
            f"| {r['what']} | {r['batch']} | {r['rate']:.0f} | {r['rate_median']:.0f} | "
            f"{r['rate_max']:.0f} |"
        )
    lines += [
        "",
        f"Batch 1 against batch 64 for the same row: max |difference| "
        f"{res['in_process']['b1_vs_b64_max_abs']:.2g}.",
        "",
        "## Served (`python -m endpointkit.serving`, wrk)",
        "",
        "| point | body | req/s (worst) | median | p50 ms | p99 ms | server CPU us/req | bad |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["served"]:
        lines.append(
            f"| {r['point']} | {r['mode']} | {r['rps']:.0f} | {r['rps_median']:.0f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['cpu_us']:.0f} | {r['bad']} |"
        )
    for s in res["skipped"]:
        lines.append(f"| {s['point']} | {s['mode']} | skipped: {s['reason']} | | | | | |")
    lines += [
        "",
        'Bodies: json = `{"instances": [[128 ids]]}` to /invocations; npy = application/x-npy '
        "in and out; oip = /v2/models/model/infer with binary tensors in and out.",
        "",
        "## Ratios: served batched / predictor batch 64",
        "",
        f"Predictor batch-64 rate: {res['in_process']['predictor_b64']:.0f} rows/s.",
        "",
        "| body | workers | req/s | ratio | goal | met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in res["ratios"]:
        lines.append(
            f"| {r['mode']} | {r['workers']} | {r['rps']:.0f} | {r['ratio']:.2f} | "
            f"{r['goal']:.1f} | {'yes' if r['met'] else 'no'} |"
        )
    lines += ["", "## Checks", ""]
    lines += [f"- {r['point']} {r['mode']}: {r['checked']}" for r in res["served"]]
    if res["errors"]:
        lines += ["", "## Errors", "", *(f"- {e}" for e in res["errors"])]
    return "\n".join(lines) + "\n"


def _write(res: dict[str, Any], stem: str, extra: Path | None) -> None:
    md = _markdown(res)
    data = json.dumps(res, indent=2, default=float) + "\n"
    for folder in [RESULTS, *([extra] if extra is not None else [])]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{stem}.md").write_text(md)
        (folder / f"{stem}.json").write_text(data)
        print(f"wrote {folder / stem}.md and .json", flush=True)


def main(argv: list[str]) -> int:
    """Run the benchmark; 0 when every answer checked out, 1 otherwise, 2 when it cannot run."""
    args = _args(argv)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch: the predictor must pick the CPU
    try:
        import numpy as np
        import torch
    except ImportError as exc:
        print(f"gpu benchmark: {exc}. Install torch (with CUDA for a GPU run).", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            f"gpu benchmark: torch {torch.__version__} sees no CUDA device "
            f"(torch.version.cuda={torch.version.cuda}). Run on a CUDA machine, or pass "
            "--device cpu for a smoke run (its figures are not GPU figures).",
            file=sys.stderr,
        )
        return 2
    if shutil.which("wrk") is None:
        print(
            "gpu benchmark: wrk is not on PATH (apt-get install -y wrk, or "
            "benchmarks/gpu_setup.sh on a machine without apt).",
            file=sys.stderr,
        )
        return 2
    if args.device == "cpu":
        torch.set_num_threads(1)  # a smoke run on a shared machine
    from . import encoder

    t0 = time.monotonic()
    cfg: dict[str, Any] = dict(TINY if args.tiny else FULL)
    half = args.device == "cuda"
    cfg["dtype"] = "fp16" if half else "fp32"
    machine = _machine(torch, args.device)
    print(f"machine: {machine}", flush=True)
    rng = np.random.default_rng(18)
    ids = rng.integers(1, cfg["vocab"], size=(max(BATCH, SAMPLE), cfg["tokens"]))
    errors: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="ek-bench-gpu-"))
    try:
        model_dir = tmp / "model"
        model_dir.mkdir()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "norm ... non-constant submodule"
            encoder.save(
                str(model_dir / "model.pt"), half=half,
                **{k: cfg[k] for k in ("vocab", "d_model", "heads", "ff", "layers", "tokens")},
            )  # fmt: skip
        print(
            f"1. in process ({cfg['dtype']}, {cfg['layers']} blocks, d {cfg['d_model']})",
            flush=True,
        )
        inproc = _in_process(torch, model_dir, ids, args)
        ref = inproc.pop("reference")
        if half:
            torch.cuda.empty_cache()  # the in-process copies are gone: leave the GPU to the servers
        print(
            f"2. served: modes {', '.join(args.modes)} ({time.monotonic() - t0:.0f} s in)",
            flush=True,
        )
        served, skipped = _served(model_dir, ids, ref, args, errors)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    machine["loadavg_end"] = list(os.getloadavg())
    ratios = bodies.ratios(inproc["predictor_b64"], served)
    res: dict[str, Any] = {
        "machine": machine,
        "model": cfg,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "in_process": inproc,
        "served": served,
        "skipped": skipped,
        "ratios": ratios,
        "errors": errors,
        "seconds": time.monotonic() - t0,
    }
    print(
        f"3. ratios: served batched / predictor batch 64 ({inproc['predictor_b64']:.0f} rows/s)",
        flush=True,
    )
    for r in ratios:
        print(
            f"  {r['mode']:<5} {r['workers']} worker(s): {r['ratio']:.2f} "
            f"(goal {r['goal']}, {'met' if r['met'] else 'not met'})",
            flush=True,
        )
    if args.device == "cuda":
        _write(res, "gpu", args.out)
    elif args.write_cpu:
        _write(res, "gpu-cpu-smoke", args.out)
    else:
        print("(CPU run: nothing written; --write-cpu writes gpu-cpu-smoke.md/json)")
    print(f"done in {res['seconds']:.0f} s; {len(errors)} error(s)", flush=True)
    for e in errors:
        print(f"  ERROR {e}", flush=True)
    return 1 if errors else 0
