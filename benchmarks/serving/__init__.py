"""`python -m benchmarks serving`: endpointkit's server against the bare-ASGI floor and every
peer, side by side in one run (method: shared/research/serving-perf.md section 4).

Sections, each server started fresh and stopped at the end of its section:

1. Overhead (trivial row-sum model): the floor, endpointkit (`/invocations`, Vertex `/predict`,
   `/ping`) and Vertex CPR, one worker pinned to CPU 0, wrk on CPU 1; then the floor and
   endpointkit at N workers (`--workers 1,2`, N up to os.cpu_count()) pinned to CPUs 0..N-1.
2. Peers (the quickstart's scikit-learn iris model, 2 rows per request): the floor, endpointkit
   (SageMaker, Vertex and OIP v2 routes), Vertex CPR, KServe ModelServer (v1 and v2), the
   SageMaker inference toolkit on Multi Model Server, BentoML; each peer in its own virtual
   environment (benchmarks/serving/envs.py). Before timing, every server's answers to a sample
   of bodies are compared with scikit-learn's own predictions; a peer that cannot be installed
   or started is reported as skipped with the reason.
3. Open loop: endpointkit and the floor at 25 % and 50 % of endpointkit's own peak, p99 against
   p99 at the same offered rate.
4. Profile: py-spy samples of endpointkit (`/invocations`) and the floor under wrk, turned
   into microseconds per request (profile.py).
5. Batching: a model with a fixed 2 ms cost per call, unbatched and batched.

Every figure is the worst of the repeats (lowest throughput, highest latency and CPU per
request). Server CPU per request: user + system time of the server's whole process tree
(/proc) over each timed run, divided by the answers. Every answer is checked (status 200 and
the exact body). Results: benchmarks/results/serving.md, serving.json and serving.png.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import envs, loadgen, peers
from . import profile as prof

RESULTS = Path(__file__).resolve().parents[1] / "results"
ROOT = Path(__file__).resolve().parents[2]
ONE = b'{"instances": [[1.0, 2.0, 3.0, 4.0]]}'
ONE_OUT = b'{"predictions":[10.0]}'
CPR_OUT = b'{"predictions": [10.0]}'  # CPR answers with stdlib json.dumps
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
FLOOR = "floor (bare ASGI)"
EK = "endpointkit"
EK_UNBATCHED = "endpointkit, batching off"
EK_INLINE = "endpointkit, predict inline (opt-in)"


def _v1(rows: list[list[float]]) -> bytes:
    return json.dumps({"instances": rows}).encode()


def _v2(rows: list[list[float]]) -> bytes:
    flat = [x for row in rows for x in row]
    shape = [len(rows), len(rows[0])]
    tensor = {"name": "input-0", "shape": shape, "datatype": "FP64", "data": flat}
    return json.dumps({"id": "1", "inputs": [tensor]}).encode()


def _predictions(answer: bytes) -> list[Any]:
    """The predictions in a v1 (``predictions``) or v2 (``outputs[0].data``) answer."""
    doc = json.loads(answer)
    if "predictions" in doc:
        return list(doc["predictions"])
    return list(doc["outputs"][0]["data"])


def _closed(
    peer: peers.Peer,
    path: str,
    method: str,
    body: bytes,
    expected: bytes,
    args: Any,
    *,
    client_cpu: str | None,
    threads: int = 1,
    conns: int = 64,
) -> dict[str, Any]:
    """Warm-up, then ``args.repeats`` wrk runs; each run's server CPU from /proc."""
    url = peer.url + path
    pid = peer.proc.pid

    def once(seconds: float) -> loadgen.ClosedLoop:
        return loadgen.wrk(
            url,
            method,
            body,
            expected,
            duration_s=seconds,
            connections=conns,
            cpu=client_cpu,
            threads=threads,
        )

    once(args.warmup)
    runs, cpu_us = [], []
    for _ in range(args.repeats):
        cpu0 = peers.cpu_seconds(pid)
        run = once(args.duration)
        cpu_us.append((peers.cpu_seconds(pid) - cpu0) * 1e6 / max(1, run.good + run.bad))
        runs.append(run)
    rps = [r.rps for r in runs]
    return {
        "peer": peer.name,
        "path": path,
        # the worst of the repeats: lowest throughput, highest latency and CPU per request
        "rps": min(rps),
        "rps_median": statistics.median(rps),
        "rps_max": max(rps),
        "p50_ms": max(r.p50_ms for r in runs),
        "p99_ms": max(r.p99_ms for r in runs),
        "cpu_us": max(cpu_us),
        "cpu_us_median": statistics.median(cpu_us),
        "good": sum(r.good for r in runs),
        "bad": sum(r.bad for r in runs) + sum(r.errors for r in runs),
    }


def _print(row: dict[str, Any]) -> None:
    print(
        f"  {row['peer']:<30} {row['path']:<22} {row['rps']:>8.0f} rps  "
        f"p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  "
        f"{row['cpu_us']:.0f} us CPU/req  bad {row['bad']}",
        flush=True,
    )


def _iris_model(tmp: Path) -> tuple[Path, Any]:
    """The quickstart's v1 model (logistic regression), trained into ``tmp``; and the model."""
    spec = importlib.util.spec_from_file_location(
        "quickstart_train", ROOT / "examples" / "quickstart" / "train.py"
    )
    if spec is None or spec.loader is None:
        raise RuntimeError("examples/quickstart/train.py not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.train(tmp / "models")
    import joblib

    model_dir = tmp / "models" / "v1"
    return model_dir, joblib.load(model_dir / "model.joblib")


def _samples(n: int = 8) -> list[list[list[float]]]:
    """``n`` request bodies of 1-5 iris rows (fixed seed)."""
    from sklearn.datasets import load_iris

    data = load_iris().data.tolist()
    rng = random.Random(18)
    return [rng.sample(data, rng.randint(1, 5)) for _ in range(n)]


def check_answers(
    peer: peers.Peer, path: str, encode: Callable[[list[list[float]]], bytes], model: Any
) -> bytes:
    """Compare the server's predictions with the model's on a sample; return the exact answer
    to the timed body (IRIS_ROWS), which wrk then expects byte for byte."""
    import httpx
    import numpy as np

    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=peer.url, timeout=30, headers=headers) as client:
        for rows in [IRIS_ROWS, *_samples()]:
            response = client.post(path, content=encode(rows))
            want = model.predict(np.asarray(rows)).tolist()
            got = _predictions(response.content) if response.status_code == 200 else None
            if got != want:
                raise RuntimeError(
                    f"{peer.name} {path}: answered {response.status_code} {got!r}, "
                    f"scikit-learn says {want!r}"
                )
        first = client.post(path, content=encode(IRIS_ROWS)).content
        if client.post(path, content=encode(IRIS_ROWS)).content != first:
            raise RuntimeError(f"{peer.name} {path}: two answers to one body differ")
    return first


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run every section; return the raw results."""
    server_cpu, client_cpu = args.server_cpu, args.client_cpu
    rows: list[dict[str, Any]] = []
    scaling: list[dict[str, Any]] = []
    iris: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    opens: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="ek-bench-serving-"))
    try:
        return _run(
            args, server_cpu, client_cpu, tmp, rows, scaling, iris, skipped, opens, profiles
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(
    args: argparse.Namespace,
    server_cpu: str | None,
    client_cpu: str | None,
    tmp: Path,
    rows: list[dict[str, Any]],
    scaling: list[dict[str, Any]],
    iris: list[dict[str, Any]],
    skipped: list[dict[str, str]],
    opens: list[dict[str, Any]],
    profiles: list[dict[str, Any]],
) -> dict[str, Any]:
    def closed(
        spec: peers.Spec,
        cases: list[tuple[str, str, bytes, bytes]],
        *,
        cpus: str | None = server_cpu,
        into: list[dict[str, Any]] = rows,
        extra: dict[str, Any] | None = None,
        threads: int = 1,
        conns: int = 64,
    ) -> None:
        with peers.start(spec, cpus) as peer:
            for path, method, body, expected in cases:
                row = _closed(
                    peer, path, method, body, expected, args,
                    client_cpu=client_cpu, threads=threads, conns=conns,
                )  # fmt: skip
                row.update(extra or {})
                into.append(row)
                _print(row)

    def skip(peer: str, reason: str) -> None:
        skipped.append({"peer": peer, "reason": reason})
        print(f"  {peer}: SKIPPED ({reason})", flush=True)

    cpr_env = envs.ensure("cpr", install=not args.no_install) if "cpr" in args.peers else None

    print("1. overhead: row-sum model, one worker on one core, wrk -t1 -c64", flush=True)
    closed(peers.floor(), [("/ping", "GET", b"", b"{}"), ("/predict", "POST", ONE, ONE_OUT)])
    closed(
        peers.endpointkit("models:Sum"),
        [
            ("/ping", "GET", b"", b""),
            ("/invocations", "POST", ONE, ONE_OUT),
            ("/predict", "POST", ONE, ONE_OUT),
        ],
    )
    # the same app with predict on the event loop (a predictor's opt-in): what the hop costs
    closed(
        peers.endpointkit("models:SumInline", name=EK_INLINE),
        [("/invocations", "POST", ONE, ONE_OUT)],
    )
    if cpr_env is not None and cpr_env.ok:
        try:
            closed(
                peers.cpr(cpr_env, None, tmp),
                [("/health", "GET", b"", b"{}"), ("/predict", "POST", ONE, CPR_OUT)],
            )
        except RuntimeError as exc:
            skip("Vertex CPR ModelServer (row sum)", str(exc)[:300])
    elif cpr_env is not None:
        skip("Vertex CPR ModelServer", cpr_env.reason)

    cpus = args.cpus
    for n in args.workers:
        if n > len(cpus):
            skip(f"{n} workers", f"only {len(cpus)} CPUs")
            continue
        pinned = ",".join(str(c) for c in cpus[:n])
        print(f"   {n} worker(s) pinned to CPU {pinned}, wrk -t{n} -c{64 * n}", flush=True)
        # the inline variant (no model thread) tells what the thread costs as workers share CPUs
        for spec in (
            peers.floor(workers=n),
            peers.endpointkit("models:Sum", workers=n),
            peers.endpointkit("models:SumInline", workers=n, name=EK_INLINE),
        ):
            path = "/predict"
            cases = [(path, "POST", ONE, ONE_OUT)]
            if spec.name == EK:
                cases.insert(0, ("/invocations", "POST", ONE, ONE_OUT))
            elif spec.name == EK_INLINE:
                cases = [("/invocations", "POST", ONE, ONE_OUT)]
            closed(
                spec, cases, cpus=pinned, into=scaling, extra={"workers": n},
                threads=n, conns=64 * n,
            )  # fmt: skip

    print("2. peers: scikit-learn iris model, one worker on one core", flush=True)
    model_dir, model = _iris_model(tmp)
    v1, v2 = _v1(IRIS_ROWS), _v2(IRIS_ROWS)

    def peer_run(
        name: str, make: Callable[[], peers.Spec], routes: list[tuple[str, Callable[..., bytes]]]
    ) -> None:
        try:
            spec = make()
            with peers.start(spec, server_cpu) as peer:
                for path, encode in routes:
                    expected = check_answers(peer, path, encode, model)
                    row = _closed(
                        peer, path, "POST", encode(IRIS_ROWS), expected, args,
                        client_cpu=client_cpu,
                    )  # fmt: skip
                    row["checked"] = f"{len(_samples()) + 1} bodies = scikit-learn"
                    iris.append(row)
                    _print(row)
        except Exception as exc:
            skip(name, f"{type(exc).__name__}: {exc}"[:400])

    peer_run(
        FLOOR,
        lambda: peers.floor(app="floor_iris:app", model_dir=model_dir),
        [("/predict", _v1)],
    )
    peer_run(
        EK,
        lambda: peers.endpointkit(None, model_dir),
        [("/invocations", _v1), ("/predict", _v1), ("/v2/models/model/infer", _v2)],
    )
    peer_run(  # the built-in handler batches by default: the same server without it
        EK_UNBATCHED,
        lambda: peers.endpointkit(
            None, model_dir, name=EK_UNBATCHED, env={"ENDPOINTKIT_MAX_BATCH_SIZE": "1"}
        ),
        [("/invocations", _v1)],
    )
    del v1, v2
    work = {name: tmp / name for name in ("cpr", "bentoml", "mms")}
    for folder in work.values():
        folder.mkdir(parents=True, exist_ok=True)
    for name in args.peers:
        label = {
            "cpr": "Vertex CPR ModelServer",
            "kserve": "KServe ModelServer",
            "mms": "SageMaker toolkit on MMS",
            "bentoml": "BentoML",
            "torchserve": "TorchServe",
        }[name]
        if name == "torchserve":
            skip(
                label,
                "not run: the SageMaker toolkit on MMS (TorchServe's parent, the same "
                "Java front end and Python workers) stands for this family",
            )
            continue
        env = cpr_env if name == "cpr" else envs.ensure(name, install=not args.no_install)
        if env is None or not env.ok:
            skip(label, env.reason if env is not None else "not requested")
            continue
        if name == "cpr":
            peer_run(label, lambda e=env: peers.cpr(e, model_dir, work["cpr"]), [("/predict", _v1)])
        elif name == "kserve":
            peer_run(
                label,
                lambda e=env: peers.kserve(e, model_dir),
                [("/v1/models/m:predict", _v1), ("/v2/models/m/infer", _v2)],
            )
        elif name == "mms":
            if shutil.which("java") is None:
                skip(label, "no Java runtime (multi-model-server's front end is Java)")
                continue
            peer_run(
                label,
                lambda e=env: peers.mms(e, model_dir, work["mms"], _v1(IRIS_ROWS)),
                [("/invocations", _v1)],
            )
        elif name == "bentoml":
            peer_run(
                label,
                lambda e=env: peers.bentoml(e, model_dir, work["bentoml"], _v1(IRIS_ROWS)),
                [("/predict", _v1)],
            )
    if "mms" not in args.peers:
        skip("SageMaker toolkit on MMS", "not requested (--peers)")

    peak = next(r["rps"] for r in rows if r["peer"] == EK and r["path"] == "/invocations")
    print(f"3. open loop at 25 % and 50 % of endpointkit's peak ({peak:.0f} rps)", flush=True)
    for spec in (peers.endpointkit("models:Sum"), peers.floor()):
        with peers.start(spec, server_cpu) as peer:
            path = "/invocations" if spec.name == EK else "/predict"
            for fraction in (0.25, 0.5):
                rate = peak * fraction
                loadgen.open_loop(
                    "127.0.0.1", peer.port, path, ONE, ONE_OUT, rate=rate, duration_s=2.0
                )
                for _ in range(args.open_repeats):
                    res = loadgen.open_loop(
                        "127.0.0.1", peer.port, path, ONE, ONE_OUT,
                        rate=rate, duration_s=args.open_duration,
                    )  # fmt: skip
                    row = {"peer": spec.name, "path": path, "fraction": fraction, **res.__dict__}
                    opens.append(row)
                    print(
                        f"  {spec.name:<30} {rate:>8.0f} rps offered -> {res.achieved:>8.0f}  "
                        f"p50 {res.p50_ms:.2f}  p99 {res.p99_ms:.2f}  p99.9 {res.p999_ms:.2f} ms"
                        f"  bad {res.bad}",
                        flush=True,
                    )

    if not args.no_profile:
        print("4. profile (py-spy) under wrk -c64", flush=True)
        iris_out = b'{"predictions":[0,2]}'
        for spec, path, body, expected, label in (
            (peers.endpointkit("models:Sum"), "/invocations", ONE, ONE_OUT, "row sum"),
            (peers.floor(), "/predict", ONE, ONE_OUT, "row sum"),
            (peers.endpointkit(None, model_dir), "/invocations", _v1(IRIS_ROWS), iris_out, "iris"),
            (
                peers.floor(app="floor_iris:app", model_dir=model_dir),
                "/predict", _v1(IRIS_ROWS), iris_out, "iris",
            ),
        ):  # fmt: skip
            p = prof.profile(
                spec, path, body, expected, cpus=server_cpu, client_cpu=client_cpu,
                load_s=args.duration * 2,
            )  # fmt: skip
            if p is not None:
                p.name = f"{p.name} ({label})"
                profiles.append(prof.as_dict(p))
                print(f"  {p.name}: {p.cpu_us:.1f} us CPU/req, {p.samples} samples", flush=True)

    print("5. batching: its own cost (row sum) and a 2 ms fixed cost per call, 64 connections")
    for predictor, label in (
        ("models:Sum", "row sum, unbatched"),
        ("models:SumBatched", "row sum, batched (64)"),
        ("models:Fixed2ms", "2 ms model, unbatched"),
        ("models:Fixed2msBatched", "2 ms model, batched (64)"),
    ):
        closed(peers.endpointkit(predictor, name=label), [("/predict", "POST", ONE, ONE_OUT)])
    if args.extras:
        for level in ("off", "all"):
            spec = peers.endpointkit("models:Sum", request_log=level, name=f"{EK} (log {level})")
            closed(spec, [("/predict", "POST", ONE, ONE_OUT)])
        if peers.granian_available():
            closed(peers.endpointkit_on_granian(), [("/invocations", "POST", ONE, ONE_OUT)])
    return {
        "closed": rows,
        "scaling": scaling,
        "iris": iris,
        "skipped": skipped,
        "open": opens,
        "profiles": profiles,
    }


def _get(rows: list[dict[str, Any]], peer: str, path: str, key: str, **match: Any) -> float:
    for r in rows:
        if r["peer"] == peer and r["path"] == path and all(r.get(k) == v for k, v in match.items()):
            return float(r[key])
    return float("nan")


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets as (what, by throughput, by CPU per request, target, met)."""
    out: list[dict[str, Any]] = []

    def add(what: str, tput: float, cpu: float, target: str, bound: float | None) -> None:
        def ok(v: float) -> str:
            if bound is None or v != v:
                return "-"
            return "yes" if v >= bound else "NO"

        out.append(
            {
                "what": what, "throughput": tput, "cpu": cpu, "target": target,
                "met_throughput": ok(tput), "met_cpu": ok(cpu),
            }
        )  # fmt: skip

    rows = results["closed"]

    def pair(rowset: list[dict[str, Any]], a: tuple[str, str], b: tuple[str, str], **m: Any):
        t = _get(rowset, *a, "rps", **m) / _get(rowset, *b, "rps", **m)
        c = _get(rowset, *b, "cpu_us", **m) / _get(rowset, *a, "cpu_us", **m)
        return t, c

    for route, label in (("/invocations", "/invocations"), ("/predict", "Vertex predict")):
        add(
            f"{label} vs floor, 1 worker (row sum)",
            *pair(rows, (EK, route), (FLOOR, "/predict")),
            ">= 0.9",
            0.9,
        )
    for n in sorted({r["workers"] for r in results["scaling"]}):
        if n == 1:
            continue
        for route, label in (("/invocations", "/invocations"), ("/predict", "Vertex predict")):
            add(
                f"{label} vs floor, {n} workers (row sum)",
                *pair(results["scaling"], (EK, route), (FLOOR, "/predict"), workers=n),
                ">= 0.9",
                0.9,
            )
        for peer, route in ((EK, "/invocations"), (EK_INLINE, "/invocations"), (FLOOR, "/predict")):
            sc = results["scaling"]
            one_rps = _get(sc, peer, route, "rps", workers=1)
            one_cpu = _get(sc, peer, route, "cpu_us", workers=1)
            add(
                f"{peer} {route}: {n} workers / ({n} x 1 worker)",
                _get(sc, peer, route, "rps", workers=n) / (n * one_rps),
                one_cpu / _get(sc, peer, route, "cpu_us", workers=n),
                ">= 0.9" if peer == EK else "(reference)",
                0.9 if peer == EK else None,
            )
    add(
        "/invocations with predict inline (opt-in, no model thread) vs floor, 1 worker",
        *pair(rows, (EK_INLINE, "/invocations"), (FLOOR, "/predict")),
        "(reference)",
        None,
    )
    cpr = ("Vertex CPR ModelServer", "/predict")
    add("/invocations vs Vertex CPR (row sum)", *pair(rows, (EK, "/invocations"), cpr), ">= 5", 5.0)
    iris = results["iris"]
    peers_iris = [
        ("Vertex CPR ModelServer", "/predict", ">= 5", 5.0),
        ("KServe ModelServer", "/v1/models/m:predict", "> 1", 1.0),
        ("KServe ModelServer", "/v2/models/m/infer", "> 1", 1.0),
        ("SageMaker toolkit on MMS", "/invocations", "> 1", 1.0),
        ("BentoML", "/predict", "> 1", 1.0),
        (FLOOR, "/predict", "(reference)", None),
    ]
    for peer, route, target, bound in peers_iris:
        ours = "/v2/models/model/infer" if route.endswith("/infer") else "/invocations"
        add(
            f"iris: endpointkit {ours} vs {peer} {route}",
            *pair(iris, (EK, ours), (peer, route)),
            target,
            bound,
        )
    cpr_iris = ("Vertex CPR ModelServer", "/predict")
    add(
        "iris, batching off (ENDPOINTKIT_MAX_BATCH_SIZE=1): /invocations vs Vertex CPR",
        *pair(iris, (EK_UNBATCHED, "/invocations"), cpr_iris),
        "(reference)",
        None,
    )
    halves = {
        peer: max(
            (o["p99_ms"] for o in results["open"] if o["peer"] == peer and o["fraction"] == 0.5),
            default=float("nan"),
        )
        for peer in (EK, FLOOR)
    }
    ratio = halves[EK] / halves[FLOOR]
    out.append(
        {
            "what": "open loop at half our peak: our p99 / floor p99 (same offered rate)",
            "throughput": ratio, "cpu": float("nan"), "target": "<= 2",
            "met_throughput": "-" if ratio != ratio else ("yes" if ratio <= 2 else "NO"),
            "met_cpu": "-",
        }
    )  # fmt: skip
    batched = _get(rows, "2 ms model, batched (64)", "/predict", "rps") / _get(
        rows, "2 ms model, unbatched", "/predict", "rps"
    )
    add("batched vs unbatched (2 ms model, 64 callers)", batched, float("nan"), ">= 5", 5.0)
    add(
        "batching's own cost: row sum batched vs unbatched (64 callers)",
        *pair(rows, ("row sum, batched (64)", "/predict"), ("row sum, unbatched", "/predict")),
        ">= 0.77 (CPU <= 1.3x)",
        1 / 1.3,
    )
    return out


def _closed_table(rows: list[dict[str, Any]], extra: str = "") -> list[str]:
    head = "| server | route | " + (f"{extra} | " if extra else "")
    lines = [
        head + "rps (worst) | median | p50 ms | p99 ms | server CPU us/req (worst) | median "
        "| checked ok | bad |",
        "|---|---|" + ("---:|" if extra else "") + "---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cell = f"{r.get(extra)} | " if extra else ""
        lines.append(
            f"| {r['peer']} | {r['path']} | {cell}{r['rps']:.0f} | {r['rps_median']:.0f} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_us']:.1f} | "
            f"{r['cpu_us_median']:.1f} | {r['good']} | {r['bad']} |"
        )
    return lines


def _num(v: float) -> str:
    return "n/a" if v != v else f"{v:.2f}"


def write(results: dict[str, Any], args: argparse.Namespace, load: list[float] | None) -> Path:
    """serving.md, serving.json and (with matplotlib) serving.png in benchmarks/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    results["targets"] = targets(results)
    results["environment"] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "server_cpu": args.server_cpu,
        "client_cpu": args.client_cpu,
        "duration_s": args.duration,
        "repeats": args.repeats,
        "open_repeats": args.open_repeats,
        "load_average_at_start": getattr(args, "load_at_start", None),
        "load_average_at_end": load or [round(x, 2) for x in os.getloadavg()],
    }
    (RESULTS / "serving.json").write_text(json.dumps(results, indent=2, default=str))
    env = results["environment"]
    lines = [
        "# Serving benchmark",
        "",
        f"Written by `nox -s bench -- serving` (`python -m benchmarks serving`), {env['date']}, "
        f"Python {env['python']}, {env['cpus']} CPUs. One worker pinned to CPU "
        f"{env['server_cpu']}, load generator on CPU {env['client_cpu']} (N workers: CPUs "
        f"0..N-1, wrk shares them). wrk -c64 per worker, {env['repeats']} x "
        f"{env['duration_s']} s after a warm-up; **every figure is the worst of the repeats** "
        "(lowest throughput, highest p50/p99 and CPU per request); medians beside them. Server "
        "CPU per request = user + system time of the server's process tree (/proc) over each "
        "run / answers. Every answer checked (status and exact body). Load average "
        f"(1, 5, 15 min) at the start {env['load_average_at_start']}, at the end "
        f"{env['load_average_at_end']}: other work on the machine moves absolute numbers; "
        "only ratios from one run mean anything, and CPU per request is the steadier view.",
        "",
        "## Targets (ratios from this run)",
        "",
        "| what | by throughput | by server CPU per request | target | met (throughput / CPU) |",
        "|---|---:|---:|---|---|",
    ]
    for t in results["targets"]:
        lines.append(
            f"| {t['what']} | {_num(t['throughput'])} | {_num(t['cpu'])} | {t['target']} | "
            f"{t['met_throughput']} / {t['met_cpu']} |"
        )
    lines += [
        "",
        "Ratios are endpointkit / other for throughput and other / endpointkit for CPU per",
        "request (so > 1 means endpointkit is ahead either way). Worker scaling: throughput",
        "at N workers / (N x one worker); by CPU: CPU per request at 1 worker / at N.",
        "",
        "## 1. Overhead: row-sum model, one worker, one core",
        "",
        *_closed_table(results["closed"]),
        "",
        "### Workers (row-sum model; N workers pinned to CPUs 0..N-1, wrk -tN -c64N on the same"
        " CPUs)",
        "",
        *_closed_table(results["scaling"], "workers"),
        "",
        "## 2. Peers: scikit-learn iris model (quickstart v1), 2 rows per request, one worker",
        "",
        "Each peer in its own virtual environment (benchmarks/serving/envs.py; the same",
        "scikit-learn). Before timing, each route's predictions for 9 bodies (1-5 rows) were",
        "compared with scikit-learn's own; wrk then checked every answer byte for byte.",
        "",
        *_closed_table(results["iris"]),
        "",
    ]
    if results["skipped"]:
        lines += ["Skipped:", ""]
        lines += [f"- {s['peer']}: {s['reason']}" for s in results["skipped"]]
        lines.append("")
    lines += [
        "## 3. Open loop (latency from the intended send time, 128 connections)",
        "",
        "| server | route | offered rps | achieved | p50 ms | p99 ms | p99.9 ms | bad |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for o in results["open"]:
        lines.append(
            f"| {o['peer']} | {o['path']} | {o['offered']:.0f} | {o['achieved']:.0f} | "
            f"{o['p50_ms']:.2f} | {o['p99_ms']:.2f} | {o['p999_ms']:.2f} | {o['bad']} |"
        )
    lines += ["", "## 4. Where the microseconds go (py-spy, wrk -c64, one worker)", ""]
    if not results["profiles"]:
        lines.append("No profile in this run (py-spy missing or --no-profile).")
    for p in results["profiles"]:
        lines += [
            f"### {p['name']} {p['path']}: {p['cpu_us']:.1f} us server CPU per request "
            f"({p['samples']} samples over {p['requests']} requests)",
            "",
            "Self time (the frame on top of the stack), us per request:",
            "",
            "| us/req | frame |",
            "|---:|---|",
        ]
        lines += [f"| {us:.1f} | `{frame}` |" for frame, us in p["self_us"]]
        lines += [
            "",
            "Inclusive time of the serving functions (frame anywhere on the stack), us/req:",
            "",
            "| us/req | function |",
            "|---:|---|",
        ]
        keep = [
            (f, us)
            for f, us in p["inclusive_us"]
            if any(k in f for k in ("endpointkit/", "uvicorn/", "floor.py", "orjson", "models.py"))
        ]
        lines += [f"| {us:.1f} | `{f}` |" for f, us in keep[:25]]
        lines.append("")
    if _plot(results):
        lines += ["![closed-loop throughput](serving.png)", ""]
    out = RESULTS / "serving.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def _plot(results: dict[str, Any]) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no PNG")
        return False
    rows = results["iris"]
    if not rows:
        return False
    labels = [f"{r['peer']}\n{r['path']}" for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 1))
    ax.barh(range(len(rows)), [1e6 / r["cpu_us"] for r in rows], color="#4878a8")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("requests per second of server CPU (1 / server CPU per request, worst run)")
    ax.set_title("iris model: endpointkit vs the floor and the peers")
    fig.tight_layout()
    fig.savefig(RESULTS / "serving.png", dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str]) -> int:
    """Entry point for `python -m benchmarks serving [--quick] ...`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks serving")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--open-duration", type=float, default=5.0)
    parser.add_argument("--open-repeats", type=int, default=2)
    parser.add_argument(
        "--workers",
        default=f"1,{os.cpu_count() or 1}",
        help="worker counts for the scaling table (up to os.cpu_count())",
    )
    parser.add_argument(
        "--peers",
        default="cpr,kserve,mms,bentoml,torchserve",
        help="comma-separated: cpr, kserve, mms, bentoml, torchserve",
    )
    parser.add_argument("--no-install", action="store_true", help="skip peers not yet installed")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--extras", action="store_true", help="also request-log levels, granian")
    parser.add_argument("--quick", action="store_true", help="1 repeat of 3 s (smoke run)")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the report from serving.json"
    )
    args = parser.parse_args(argv)
    cpu_count = os.cpu_count() or 1
    args.workers = sorted({min(cpu_count, max(1, int(w))) for w in args.workers.split(",")} | {1})
    args.peers = [p for p in args.peers.split(",") if p]
    args.load_at_start = [round(x, 2) for x in os.getloadavg()]
    # Servers start many times: let them compile bytecode once, into a private cache (the
    # shared environment is not touched), instead of recompiling every import every start.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(envs.CACHE / "pycache"))
    # SIGTERM -> SystemExit, so every started server is stopped by its context manager
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.duration, args.warmup, args.repeats = 3.0, 1.0, 1
        args.open_duration, args.open_repeats = 3.0, 1
    cpus = args.cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        args.server_cpu, args.client_cpu = str(cpus[0]), str(cpus[1])
        os.sched_setaffinity(0, {cpus[1]})  # the open-loop generator runs in this process
    else:
        args.server_cpu = args.client_cpu = None
        print("one CPU only: server and load generator share it")
    started = time.monotonic()
    if args.report_only:
        results = json.loads((RESULTS / "serving.json").read_text())
        env = results["environment"]
        args.server_cpu, args.client_cpu = env["server_cpu"], env["client_cpu"]
        args.duration, args.repeats = env["duration_s"], env["repeats"]
        args.load_at_start = env.get("load_average_at_start")
        load = env.get("load_average_at_end")
    else:
        results = run(args)
        load = None
    out = write(results, args, load)
    print(f"\nwrote {out} ({time.monotonic() - started:.0f} s)")
    for t in results["targets"]:
        print(
            f"  {t['what']:<70} {_num(t['throughput']):>7} (by CPU {_num(t['cpu']):>6})  "
            f"target {t['target']:<12} {t['met_throughput']}/{t['met_cpu']}"
        )
    return 0
