"""Start-up cost, like with like: `import endpointkit` plus loading the API against
`import boto3` (and boto3 plus a SageMaker runtime client), in fresh interpreters.

Each command runs N times, interleaved (background noise hits every case alike); we report
the median and the worst wall time, the difference to the floor (`python -c pass`), and the
like-with-like ratios. Peers are measured when installed (boto3; the Vertex SDK).

Bytecode: every command first runs once untimed. By default the children get a private
PYTHONPYCACHEPREFIX with bytecode writing on, so that run compiles what they import, as pip
does at install (the shared environment is not touched); `--keep-bytecode-env` leaves the
environment as it is. Either way the report states what was measured: for each command, how
many of the Python modules it imported had bytecode on disk when the timed runs began.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
LOAD_API = "import endpointkit as ek; ek.Endpoint; ek.EndpointSpec; ek.apply"
BOTO3_CLIENT = "import boto3; boto3.client('sagemaker-runtime', region_name='us-east-1')"

CASES: dict[str, str] = {
    "floor: python -c pass": "pass",
    "import endpointkit": "import endpointkit",
    "import endpointkit + load the API": LOAD_API,
    "endpointkit --help": "import runpy, sys; sys.argv = ['endpointkit', '--help']; "
    "runpy.run_module('endpointkit.cli', run_name='__main__')",
}
PEERS: dict[str, tuple[str, str]] = {
    "peer: import boto3": ("boto3", "import boto3"),
    "peer: import boto3 + a sagemaker-runtime client": ("boto3", BOTO3_CLIENT),
    "peer: import google.cloud.aiplatform": (
        "google.cloud.aiplatform",
        "import google.cloud.aiplatform",
    ),
}
# (what, ours, theirs): the comparisons the issue asks for
LIKE_WITH_LIKE = [
    ("endpointkit + API vs boto3", "import endpointkit + load the API", "peer: import boto3"),
    (
        "endpointkit + API vs boto3 + client",
        "import endpointkit + load the API",
        "peer: import boto3 + a sagemaker-runtime client",
    ),
]
_PROBE = """
import importlib.util, json, sys, io, contextlib
before = set(sys.modules)
with contextlib.redirect_stdout(io.StringIO()):
    try:
        exec(compile(sys.argv[1], "<case>", "exec"))
    except SystemExit:
        pass
have = total = 0
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if name in before or not path or not path.endswith(".py"):
        continue
    total += 1
    try:
        have += __import__("os").path.exists(importlib.util.cache_from_source(path))
    except (NotImplementedError, ValueError):
        pass
print(json.dumps([have, total]))
"""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _bytecode(code: str, env: dict[str, str]) -> tuple[int, int]:
    """(modules with bytecode on disk, modules imported) for one command's imports."""
    # the probe must not write bytecode itself, or it would report its own work
    probe_env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, code], env=probe_env, capture_output=True, text=True
    )
    try:
        have, total = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return 0, 0
    return int(have), int(total)


def measure(runs: int, env: dict[str, str]) -> dict[str, dict[str, float]]:
    cases = dict(CASES)
    cases.update({name: code for name, (module, code) in PEERS.items() if _installed(module)})
    for code in cases.values():  # warm-up: page cache, and bytecode where it may be written
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    present = {name: _bytecode(code, env) for name, code in cases.items()}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, code in cases.items():
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
            samples[name].append(time.perf_counter() - started)
    return {
        name: {
            "median_ms": statistics.median(values) * 1000,
            "worst_ms": max(values) * 1000,
            "bytecode_present": present[name][0],
            "modules": present[name][1],
        }
        for name, values in samples.items()
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--keep-bytecode-env",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE / PYTHONPYCACHEPREFIX as they are",
    )
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.keep_bytecode_env:
        how = "environment as given"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="ek-bench-startup-pycache-")
        how = "private PYTHONPYCACHEPREFIX, bytecode written by one untimed run of each command"
    load = [round(x, 2) for x in os.getloadavg()]
    results = measure(args.runs, env)
    floor = results["floor: python -c pass"]["median_ms"]
    compiled = all(r["bytecode_present"] == r["modules"] for r in results.values())
    lines = [
        f"# Start-up ({args.runs} runs each, interleaved, fresh interpreter)",
        "",
        "Written by `nox -s bench -- startup` (`python -m benchmarks startup`). Load average "
        f"at the start: {load}. Bytecode: {how}. "
        + (
            "Every module these commands import had bytecode on disk during the timed runs."
            if compiled
            else "NOT every imported module had bytecode on disk during the timed runs (see "
            "the bytecode column): those were compiled from source on every import."
        ),
        "",
        "## Like with like",
        "",
        "| comparison | ours ms (median / worst) | theirs ms (median / worst) | ratio of medians |",
        "|---|---:|---:|---:|",
    ]
    for what, ours, theirs in LIKE_WITH_LIKE:
        if theirs not in results:
            lines.append(f"| {what} | - | not installed | - |")
            continue
        a, b = results[ours], results[theirs]
        lines.append(
            f"| {what} | {a['median_ms']:.1f} / {a['worst_ms']:.1f} | "
            f"{b['median_ms']:.1f} / {b['worst_ms']:.1f} | "
            f"{a['median_ms'] / b['median_ms']:.2f} |"
        )
    lines += [
        "",
        "## Every command",
        "",
        "| command | median ms | worst ms | median minus floor, ms | x floor | "
        "bytecode on disk / modules imported |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['median_ms']:.1f} | {r['worst_ms']:.1f} | "
            f"{r['median_ms'] - floor:.1f} | {r['median_ms'] / floor:.2f} | "
            f"{r['bytecode_present']} / {r['modules']} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup.md").write_text(text)
    return 0
