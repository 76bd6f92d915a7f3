"""Local gateway overhead, and deploy-to-InService time (issue 4).

Same run, same version process, interleaved rounds:
- latency: one request at a time over a keep-alive connection, to the version server directly
  (`POST /invocations`) and through the gateway (`POST /endpoints/NAME/invocations`); p50/p99.
- throughput: `--concurrency` requests in flight for `--seconds`, both ways.
- floor: the same throughput rounds against the bare-ASGI floor server
  (benchmarks/serving/floor.py on uvicorn, one worker), interleaved with the others.
- relay (a reference row, no target): the same latency and throughput rounds through a bare
  uvloop relay (relay.py) that copies bytes between the client's TCP connection and the same
  version's Unix socket, parsing nothing: the floor for the hop itself, so gateway / relay is
  what the gateway's HTTP and routing cost, and relay / direct what any extra hop costs here.
Targets: gateway p50 at most 1.3x direct, gateway throughput at least 0.7x direct, gateway
CPU per request at most 1.5x the floor server's (CPU from /proc over the throughput rounds).
Both models by default (`--model both`): the echo predictor (the gateway's cost against the
cheapest version) and the quickstart's iris model.
- deploy: wall time of `Endpoint.deploy(...)` (returns once InService) for the example iris
  model, with the gateway already running; target under 3 s.

The load generator is a raw asyncio HTTP/1.1 client (the gateway's own upstream pool), so the
client's cost does not hide the gateway's. Results go to benchmarks/results/gateway.md.

Bytecode: a deploy starts a fresh interpreter that imports the model's libraries. Where
PYTHONDONTWRITEBYTECODE is set and the environment holds no .pyc files (this project's dev
container), every start compiles scikit-learn from source (~4 s on 2 cores). The benchmark
therefore runs its processes with a private PYTHONPYCACHEPREFIX (the shared environment is
not touched) and reports the first, cold deploy apart from the warm ones, as on a normal
installation where pip has compiled the bytecode.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.serving import peers

RESULTS = Path(__file__).resolve().parent.parent / "results"
ROOT = Path(__file__).resolve().parents[2]
BODY = b'{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'
HEADERS = [(b"content-type", b"application/json"), (b"accept", b"application/json")]


def _model_dirs(tmp: Path, kind: str) -> tuple[list[Path], str]:
    """Two small model directories: the quickstart's iris models (trained now), or echo models
    (no ML library: the gateway's overhead against the cheapest possible version)."""
    if kind == "iris" and importlib.util.find_spec("sklearn") is not None:
        spec = importlib.util.spec_from_file_location(
            "quickstart_train", ROOT / "examples" / "quickstart" / "train.py"
        )
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.train(tmp / "models")
            return [tmp / "models" / "v1", tmp / "models" / "v2"], "iris (scikit-learn)"
    dirs = []
    for name in ("v1", "v2"):
        folder = tmp / "models" / name
        folder.mkdir(parents=True)
        shutil.copy(ROOT / "tests" / "conformance" / "models" / "echo_predictor.py", folder)
        (folder / "answer.txt").write_text(name)
        (folder / "mode.txt").write_text("echo")
        dirs.append(folder)
    return dirs, "echo predictor"


def _check(status: int, body: bytes, expected: bytes | None) -> None:
    """Every answer is checked: 200, and (where given) the body the version gives directly."""
    if status != 200:
        raise RuntimeError(f"benchmark request failed with {status}: {body[:200]!r}")
    if expected is not None and body != expected:
        raise RuntimeError(f"benchmark answer differs: {body[:200]!r} != {expected[:200]!r}")


async def _latency(
    address: int | str, path: bytes, n: int, expected: bytes | None = None
) -> list[float]:
    from endpointkit.adapters.local._http.client import Pool

    pool = Pool(address)
    samples = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            status, _, body = await pool.request(b"POST", path, HEADERS, BODY)
            samples.append(time.perf_counter() - started)
            _check(status, body, expected)
    finally:
        pool.close()
    return samples


async def _throughput(
    address: int | str,
    path: bytes,
    concurrency: int,
    seconds: float,
    expected: bytes | None = None,
) -> float:
    from endpointkit.adapters.local._http.client import Pool

    pool = Pool(address)
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            status, _, body = await pool.request(b"POST", path, HEADERS, BODY)
            _check(status, body, expected)
            done += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        pool.close()
    return done / (time.perf_counter() - started)


def _run(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from endpointkit.adapters.local import LocalBackend
    from endpointkit.endpoint import Endpoint
    from endpointkit.spec import VersionSpec

    tmp = Path(tempfile.mkdtemp(prefix="ek-bench-gateway-"))
    if not args.keep_bytecode_env:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    backend = LocalBackend(home=tmp / "home")
    floor_stack = contextlib.ExitStack()  # the floor server, stopped whatever happens
    try:
        (v1_dir, v2_dir), model = _model_dirs(tmp, args.model)
        predictor = None if model.startswith("iris") else "echo_predictor:Echo"
        started = time.perf_counter()
        backend.ensure_gateway()
        gateway_start = time.perf_counter() - started
        started = time.perf_counter()
        ep = Endpoint.create(
            "bench", VersionSpec(name="v1", model=str(v1_dir), predictor=predictor), backend=backend
        )
        create_s = time.perf_counter() - started
        deploys: list[float] = []
        process_ready: list[float] = []
        for i in range(args.deploys + 1):
            name = f"v{i + 2}"
            started = time.perf_counter()
            ep.deploy(
                VersionSpec(name=name, model=str(v2_dir), predictor=predictor, env={"RUN": str(i)}),
                traffic=0,
            )
            deploys.append(time.perf_counter() - started)
            process_ready.append(_process_ready_s(ep.history(), name))
            ep.undeploy(name)
        floors = [_import_floor(model) for _ in range(3)]
        version = ep.status().version("v1")
        assert version is not None
        # the version's own address: its Unix socket, or its port where there are none
        direct_port = version.details.get("socket") or int(version.details["port"])
        gateway_port = int(backend.gateway_url().rsplit(":", 1)[1])
        direct_path = b"/invocations"
        gateway_path = b"/endpoints/bench/invocations"
        # Every answer must be the one the version gives directly.
        expected = _run(_answer(direct_port, direct_path))
        # The bare relay to the same version address the gateway uses (the port, for the
        # relay's readiness check, answers GET /ping through the relay from the version).
        relay_report = tmp / "relay.json"
        relay_port = peers.free_port()
        relay_cmd = [
            sys.executable, "-m", "benchmarks.gateway.relay", "--port", str(relay_port),
            "--upstream", str(direct_port), "--report", str(relay_report),
        ]  # fmt: skip
        relay = floor_stack.enter_context(
            peers.start(peers.Spec("bare relay", relay_cmd, relay_port), None)
        )
        relay_path = direct_path
        # Warm every path (connections, caches), then interleave rounds.
        _run(_latency(direct_port, direct_path, 200, expected))
        _run(_latency(gateway_port, gateway_path, 200, expected))
        _run(_latency(relay_port, relay_path, 200, expected))
        gateway_pid = backend.store.gateway().pid
        version_pid = int(version.details["pid"])
        lat: dict[str, list[float]] = {"direct": [], "gateway": [], "relay": []}
        tput: dict[str, list[float]] = {"direct": [], "gateway": [], "relay": []}
        # CPU seconds the gateway and the version process spent on the gateway path's
        # throughput rounds, and how many requests those rounds served.
        cpu = {"gateway": 0.0, "version": 0.0, "requests": 0.0}
        relay_cpu = {"cpu": 0.0, "requests": 0.0}
        per_round = max(1, args.requests // args.rounds)
        floor_cpu = {"cpu": 0.0, "requests": 0.0}
        tput["floor"] = []
        floor = floor_stack.enter_context(peers.start(peers.floor(), None))
        for _ in range(args.rounds):
            f0 = peers.cpu_seconds(floor.proc.pid)
            started = time.perf_counter()
            rate = _run(_throughput(floor.port, b"/predict", args.concurrency, args.seconds))
            floor_cpu["requests"] += rate * (time.perf_counter() - started)
            floor_cpu["cpu"] += peers.cpu_seconds(floor.proc.pid) - f0
            tput["floor"].append(rate)
            lat["direct"] += _run(_latency(direct_port, direct_path, per_round, expected))
            lat["gateway"] += _run(_latency(gateway_port, gateway_path, per_round, expected))
            lat["relay"] += _run(_latency(relay_port, relay_path, per_round, expected))
            tput["direct"].append(
                _run(
                    _throughput(direct_port, direct_path, args.concurrency, args.seconds, expected)
                )
            )
            g0, v0 = _cpu_s(gateway_pid), _cpu_s(version_pid)
            started = time.perf_counter()
            rate = _run(
                _throughput(gateway_port, gateway_path, args.concurrency, args.seconds, expected)
            )
            cpu["requests"] += rate * (time.perf_counter() - started)
            cpu["gateway"] += _cpu_s(gateway_pid) - g0
            cpu["version"] += _cpu_s(version_pid) - v0
            tput["gateway"].append(rate)
            r0 = _cpu_s(relay.proc.pid)
            started = time.perf_counter()
            rate = _run(
                _throughput(relay_port, relay_path, args.concurrency, args.seconds, expected)
            )
            relay_cpu["requests"] += rate * (time.perf_counter() - started)
            relay_cpu["cpu"] += _cpu_s(relay.proc.pid) - r0
            tput["relay"].append(rate)
        floor_stack.close()
        relayed = json.loads(relay_report.read_text())
        if relayed["short"] or not relayed["to_client"]:
            raise RuntimeError(f"the bare relay lost bytes: {relayed}")
        ep.delete()
        backend.wait_deleted("bench", timeout=60)
    finally:
        floor_stack.close()
        backend.stop_gateway()
        backend.close()
        shutil.rmtree(tmp, ignore_errors=True)

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    result: dict[str, Any] = {
        "model": model,
        "machine": f"{platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}",
        "requests_per_path": len(lat["direct"]),
        "concurrency": args.concurrency,
        "p50_ms": {k: pct(v, 0.5) for k, v in lat.items()},
        "p99_ms": {k: pct(v, 0.99) for k, v in lat.items()},
        "throughput_rps": {k: statistics.median(v) for k, v in tput.items()},
        "cpu_us_per_request": {
            "gateway": cpu["gateway"] / max(1.0, cpu["requests"]) * 1e6,
            "version": cpu["version"] / max(1.0, cpu["requests"]) * 1e6,
            "floor server": floor_cpu["cpu"] / max(1.0, floor_cpu["requests"]) * 1e6,
            "relay": relay_cpu["cpu"] / max(1.0, relay_cpu["requests"]) * 1e6,
        },
        "relay_bytes": relayed,
        "gateway_start_s": gateway_start,
        "create_s": create_s,
        "first_deploy_s": deploys[0],
        "import_floor_s": statistics.median(floors),
        "process_ready_s": process_ready[1:],
        "load_average": os.getloadavg(),
        "deploy_to_in_service_s": deploys[1:],
        "bytecode": "env as given"
        if args.keep_bytecode_env
        else "private PYTHONPYCACHEPREFIX (first deploy compiles, the rest reuse it)",
    }
    result["p50_ratio"] = result["p50_ms"]["gateway"] / result["p50_ms"]["direct"]
    cpu_us = result["cpu_us_per_request"]
    result["cpu_ratio_vs_floor"] = cpu_us["gateway"] / cpu_us["floor server"]
    result["throughput_ratio"] = (
        result["throughput_rps"]["gateway"] / result["throughput_rps"]["direct"]
    )
    p50 = result["p50_ms"]
    result["gateway_vs_relay_p50"] = p50["gateway"] / p50["relay"]
    result["relay_vs_direct_p50"] = p50["relay"] / p50["direct"]
    result["gateway_vs_relay_cpu"] = cpu_us["gateway"] / cpu_us["relay"]
    return result


async def _answer(address: int | str, path: bytes) -> bytes:
    """The version's own answer to the benchmark's request."""
    from endpointkit.adapters.local._http.client import Pool

    pool = Pool(address)
    try:
        status, _, body = await pool.request(b"POST", path, HEADERS, BODY)
    finally:
        pool.close()
    _check(status, body, None)
    return body


def _cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process (Linux /proc; 0.0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_ready_s(events: list[Any], version: str) -> float:
    """The supervisor's own measure: process start to first healthy /ping (from history)."""
    for event in reversed(events):
        if event.kind == "deployed" and event.version == version:
            match = re.search(r"process ready in ([0-9.]+) s", event.message)
            if match:
                return float(match.group(1))
    return float("nan")


def _import_floor(model: str) -> float:
    """Seconds for a fresh interpreter to import the serving server and the model's library:
    the part of a deploy that no supervisor can save."""
    libs = "import endpointkit.serving.app, uvicorn"
    if model.startswith("iris"):
        libs += ", sklearn.linear_model, sklearn.ensemble, joblib"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", libs], check=True)
    return time.perf_counter() - started


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def render(r: dict[str, Any]) -> str:
    deploys = r["deploy_to_in_service_s"]
    lines = [
        f"## Model: {r['model']}",
        "",
        f"Model: {r['model']}. Machine: {r['machine']}. Same run, interleaved rounds; "
        f"{r['requests_per_path']} sequential requests per path, throughput with "
        f"{r['concurrency']} in flight.",
        "",
        "| path | p50 ms | p99 ms | throughput req/s | CPU us/req |",
        "|---|---:|---:|---:|---:|",
    ]
    cpu = r["cpu_us_per_request"]
    for path, label in (
        ("direct", "direct"),
        ("gateway", "gateway"),
        ("relay", "bare relay (reference: bytes only)"),
    ):
        if path not in r["p50_ms"]:
            continue
        lines.append(
            f"| {label} | {r['p50_ms'][path]:.3f} | {r['p99_ms'][path]:.3f} | "
            f"{r['throughput_rps'][path]:.0f} | "
            + (f"{cpu[path]:.0f}" if path in cpu else "-")
            + " |"
        )
    lines.append(
        f"| floor server (bare ASGI) | - | - | {r['throughput_rps']['floor']:.0f} | "
        f"{cpu['floor server']:.0f} |"
    )
    lines += [
        "",
        f"- gateway p50 / direct p50: **{r['p50_ratio']:.2f}x** (target <= 1.3x)",
        f"- gateway throughput / direct: **{r['throughput_ratio']:.2f}x** (target >= 0.7x)",
        f"- the hop's floor (bare relay, no target): relay p50 / direct p50 "
        f"{r['relay_vs_direct_p50']:.2f}x; gateway p50 / relay p50 "
        f"{r['gateway_vs_relay_p50']:.2f}x; gateway CPU per request / the relay's "
        f"{r['gateway_vs_relay_cpu']:.2f}x; relay throughput / direct "
        f"{r['throughput_rps']['relay'] / r['throughput_rps']['direct']:.2f}x",
        f"- gateway CPU per request / the floor server's: **{r['cpu_ratio_vs_floor']:.2f}x** "
        f"(target <= 1.5x): gateway {r['cpu_us_per_request']['gateway']:.0f} us, floor server "
        f"{r['cpu_us_per_request']['floor server']:.0f} us; the version server behind the "
        f"gateway {r['cpu_us_per_request']['version']:.0f} us (on 2 cores the load generator, "
        "the gateway and the version server share the CPUs, which caps the throughput ratio)",
        f"- gateway start (daemon up, ready): {r['gateway_start_s']:.2f} s",
        f"- create (first version InService, cold: compiles bytecode): {r['create_s']:.2f} s",
        f"- first deploy after create: {r['first_deploy_s']:.2f} s",
        f"- deploy to InService, {len(deploys)} runs: median **{statistics.median(deploys):.2f} s**"
        f", max {max(deploys):.2f} s (target < 3 s); of which a fresh interpreter importing the "
        f"server and the model's library takes {r['import_floor_s']:.2f} s (median of 3), and "
        f"the version process took {statistics.median(r['process_ready_s']):.2f} s from start "
        f"to its first healthy answer: endpointkit's own share is "
        f"{statistics.median(deploys) - statistics.median(r['process_ready_s']):.2f} s",
        f"- machine load average (1, 5, 15 min) at the end: "
        f"{', '.join(f'{x:.1f}' for x in r['load_average'])}",
        f"- bytecode: {r['bytecode']}",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks gateway", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="sequential requests per path")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=2.0, help="per throughput round")
    parser.add_argument("--deploys", type=int, default=5)
    parser.add_argument("--model", choices=("both", "iris", "echo"), default="both")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--keep-bytecode-env",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE / PYTHONPYCACHEPREFIX as they are",
    )
    args = parser.parse_args(argv)
    models = ["echo", "iris"] if args.model == "both" else [args.model]
    results: dict[str, Any] = {}
    for model in models:
        args.model = model
        results[model] = measure(args)
        print(render(results[model]), flush=True)
    text = "\n".join(
        [
            "# Local gateway: overhead and deploy-to-InService",
            "",
            "Written by `nox -s bench -- gateway` (`python -m benchmarks gateway`); one section "
            "per model, each from its own run of the same script, back to back.",
            "",
            "| model | gateway p50 / direct p50 (<= 1.3x) | gateway CPU/req / floor server's "
            "(<= 1.5x) | gateway throughput / direct (>= 0.7x) |",
            "|---|---:|---:|---:|",
            *(
                f"| {r['model']} | {r['p50_ratio']:.2f} | {r['cpu_ratio_vs_floor']:.2f} | "
                f"{r['throughput_ratio']:.2f} |"
                for r in results.values()
            ),
            "",
            *(render(r) for r in results.values()),
        ]
    )
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        stem = "gateway" if len(models) > 1 else f"gateway-{models[0]}"
        (RESULTS / f"{stem}.md").write_text(text)
        (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
