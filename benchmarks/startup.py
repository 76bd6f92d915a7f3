"""Start-up cost: `import endpointkit`, first use of the API, and `endpointkit --help`.

Each command runs in a fresh interpreter, N times, interleaved; we report the median wall
time and its ratio to the floor (`python -c pass`) and to peers that are installed (boto3;
the Vertex SDK). Goal (issue 2): `import endpointkit` < 150 ms, `endpointkit --help` < 300 ms.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

CASES: dict[str, list[str]] = {
    "floor: python -c pass": [sys.executable, "-c", "pass"],
    "import endpointkit": [sys.executable, "-c", "import endpointkit"],
    "import endpointkit + load the API": [
        sys.executable,
        "-c",
        "import endpointkit as ek; ek.Endpoint; ek.EndpointSpec; ek.apply",
    ],
    "endpointkit --help": [sys.executable, "-m", "endpointkit.cli", "--help"],
}
PEERS = {
    "peer: import boto3": ("boto3", [sys.executable, "-c", "import boto3"]),
    "peer: import google.cloud.aiplatform": (
        "google.cloud.aiplatform",
        [sys.executable, "-c", "import google.cloud.aiplatform"],
    ),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def measure(runs: int) -> dict[str, float]:
    cases = dict(CASES)
    cases.update({name: cmd for name, (module, cmd) in PEERS.items() if _installed(module)})
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):  # interleaved, so background noise hits every case alike
        for name, cmd in cases.items():
            started = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1000 for name, values in samples.items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    medians = measure(args.runs)
    floor = medians["floor: python -c pass"]
    lines = [
        f"# Start-up ({args.runs} runs each, median wall time, fresh interpreter)",
        "",
        "Bytecode compiled beforehand (`python -m compileall`), as an installed package has it;",
        "with PYTHONDONTWRITEBYTECODE=1 and no .pyc files every import recompiles its sources.",
        "",
        "| command | ms | minus floor, ms | x floor |",
        "|---|---:|---:|---:|",
    ]
    for name, ms in medians.items():
        lines.append(f"| {name} | {ms:.1f} | {ms - floor:.1f} | {ms / floor:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup.md").write_text(text)
    return 0
