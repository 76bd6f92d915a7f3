"""Image budget: size, container start to /ping 200, and serving throughput in the container
against the bare process (`python -m benchmarks image`, or `nox -s bench -- image`).

Needs the image built by `nox -s container` (localhost/endpointkit-serve:sklearn), podman and
wrk (`apt-get install -y wrk`). The iris model is trained inside the image, so the container and
the bare process load the same file with the image's scikit-learn version. Every figure is the
worse of the repeated runs. Writes benchmarks/results/image.md; `--size-only` re-measures only
the size (it does not depend on load) and rewrites only its row and section there, saying so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from benchmarks.serving.loadgen import wrk
from benchmarks.serving.peers import free_port

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "containers" / "podman" / "containers.conf"
RESULTS = ROOT / "benchmarks" / "results" / "image.md"
IMAGE = "localhost/endpointkit-serve:sklearn"
EXTRAS = "serve,sklearn,grpc"  # what containers/local.py builds that image with
BASE = "localhost/endpointkit-base:bookworm"
ROWS = [[5.1, 3.5, 1.4, 0.2], [5.9, 3.0, 5.1, 1.8]]
BODY = json.dumps({"instances": ROWS}).encode()
EXPECTED = b'{"predictions":[0,2]}'
SERVER_CPU, LOAD_CPU = "0", "1"


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", *args],
        env={**os.environ, "CONTAINERS_CONF": str(CONF)},
        check=check,
        capture_output=True,
        text=True,
    )


def mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


def train_iris(image: str, out: Path) -> None:
    out.chmod(0o777)
    code = (
        "import joblib; from sklearn.datasets import load_iris;"
        "from sklearn.linear_model import LogisticRegression;"
        "x, y = load_iris(return_X_y=True);"
        "joblib.dump(LogisticRegression(max_iter=500).fit(x, y), '/out/model.joblib')"
    )
    podman("run", "--rm", "--network", "host", "--entrypoint", "python3",
           "--volume", f"{out}:/out", image, "-c", code)  # fmt: skip
    (out / "model.joblib").chmod(0o644)


def size_report(image: str) -> tuple[int, list[str]]:
    """Total size and what dominates it (du inside the image)."""
    total = int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())
    base = podman("image", "inspect", "--format", "{{.Size}}", BASE, check=False)
    script = (
        "cd /opt/venv/lib/python3*/site-packages && du -sk * | sort -rn | head -8;"
        "echo; du -sk /opt/venv /usr/lib/python3* /usr/lib/x86_64-linux-gnu /usr/bin 2>/dev/null"
    )
    out = podman("run", "--rm", "--network", "host", "--entrypoint", "sh", image, "-c", script)
    lines = []
    if base.returncode == 0:
        lines.append(f"| base image ({BASE}) | {mb(int(base.stdout.strip()))} |")
    for row in out.stdout.splitlines():
        if row.strip():
            kb, path = row.split(None, 1)
            lines.append(f"| {path} | {int(kb) / 1024:.0f} MiB |")
    return total, lines


@contextlib.contextmanager
def container(image: str, model: Path, port: int, cpu: str | None) -> Iterator[str]:
    name = f"endpointkit-bench-{uuid.uuid4().hex[:8]}"
    cmd = ["run", "--detach", "--name", name, "--network", "host",
           "--env", "ENDPOINTKIT_HOST=127.0.0.1", "--env", f"SAGEMAKER_BIND_TO_PORT={port}",
           "--env", "SAGEMAKER_MODEL_SERVER_WORKERS=1", "--env", "ENDPOINTKIT_REQUEST_LOG=off",
           "--volume", f"{model}:/opt/ml/model:ro"]  # fmt: skip
    if cpu is not None:
        cmd += ["--cpuset-cpus", cpu]
    try:
        podman(*cmd, image, "serve")
        yield name
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


@contextlib.contextmanager
def bare(model: Path, port: int, cpu: str | None) -> Iterator[subprocess.Popen[bytes]]:
    cmd = [sys.executable, "-m", "endpointkit.serving", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1", "--model-dir", str(model),
           "--request-log", "off"]  # fmt: skip
    if cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_ping(port: int, started: float, limit_s: float = 60) -> float:
    url = f"http://127.0.0.1:{port}/ping"
    while time.monotonic() - started < limit_s:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"/ping not 200 within {limit_s} s")


def start_times(image: str, model: Path, runs: int) -> dict[str, list[float]]:
    """`podman run` (or the bare command) to the first /ping 200, in seconds."""
    times: dict[str, list[float]] = {"container": [], "bare process": []}
    for _ in range(runs):
        port = free_port()
        started = time.monotonic()
        with container(image, model, port, None):
            times["container"].append(wait_ping(port, started))
        port = free_port()
        started = time.monotonic()
        with bare(model, port, None):
            times["bare process"].append(wait_ping(port, started))
    return times


def podman_overhead(image: str, runs: int) -> float:
    """Worst `podman run --rm <image> /bin/true`: the container runtime's share of start-up."""
    times = []
    for _ in range(runs):
        started = time.monotonic()
        podman("run", "--rm", "--network", "host", "--entrypoint", "/bin/true", image)
        times.append(time.monotonic() - started)
    return max(times)


def throughput(image: str, model: Path, runs: int, duration_s: float) -> list[dict[str, float]]:
    """wrk -t1 -c64 on CPU 1 against one worker on CPU 0: container, then bare, per run."""
    out = []
    for _ in range(runs):
        row: dict[str, float] = {}
        for kind in ("container", "bare process"):
            port = free_port()
            ctx = container(image, model, port, SERVER_CPU) if kind == "container" else None
            with ctx or bare(model, port, SERVER_CPU):
                wait_ping(port, time.monotonic())
                url = f"http://127.0.0.1:{port}"
                # warm-up
                wrk(url + "/invocations", "POST", BODY, EXPECTED, duration_s=2,
                    connections=64, cpu=LOAD_CPU)  # fmt: skip
                for route, method, body, expected in (
                    ("/invocations", "POST", BODY, EXPECTED),
                    ("/ping", "GET", b"", b""),
                ):
                    r = wrk(url + route, method, body, expected, duration_s=duration_s,
                            connections=64, cpu=LOAD_CPU)  # fmt: skip
                    if r.bad or r.errors:
                        raise RuntimeError(f"{kind} {route}: {r.bad} bad, {r.errors} errors")
                    row[f"{kind} {route}"] = r.rps
        out.append(row)
    return out


def size_row(total: int) -> str:
    return f"| image size | {mb(total)} | < 450 MB | {'yes' if total < 450e6 else 'NO'} |"


def rewrite_size(text: str, image: str, total: int, size_lines: list[str]) -> str:
    """``text`` (a full run's results) with only the size row and the size section replaced,
    and a line saying that the other figures come from the earlier run on the earlier image."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    heading = f"# Image budget (CPU image, EXTRAS={EXTRAS})"
    text = re.sub(r"^# Image budget \(CPU image, EXTRAS=[^)]*\)$", heading, text, flags=re.M)
    text, rows = re.subn(r"^\| image size \|.*$", size_row(total), text, count=1, flags=re.M)
    head, found, rest = text.partition("## Size: what dominates\n")
    if not rows or not found:
        raise SystemExit(f"{RESULTS} has no size row or section: run without --size-only")
    rest = rest[rest.index("\n## ") :] if "\n## " in rest else ""
    section = [
        "",
        f"Size re-measured {when} with `--size-only` (image `{image}`, EXTRAS={EXTRAS}); the "
        "start-up and serving figures above and below are from the full run dated at the top, "
        "on the image as it was then. Sizes from `du` inside the image (largest site-packages "
        "entries first).",
        "",
        "| part | size |",
        "|---|---:|",
        *size_lines,
        "",
    ]
    return head + found + "\n".join(section) + rest


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks image", description=__doc__)
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--runs", type=int, default=5, help="start-up runs (default 5)")
    parser.add_argument("--load-runs", type=int, default=3, help="throughput runs (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument(
        "--size-only",
        action="store_true",
        help="measure only the size; rewrite only its row and section in the results file",
    )
    args = parser.parse_args(argv)
    if args.size_only:
        total, size_lines = size_report(args.image)
        RESULTS.write_text(rewrite_size(RESULTS.read_text(), args.image, total, size_lines))
        print(f"{args.image}: {mb(total)}", *size_lines, sep="\n")
        return 0

    with tempfile.TemporaryDirectory(prefix="endpointkit-image-bench-") as tmp:
        model = Path(tmp)
        train_iris(args.image, model)
        total, size_lines = size_report(args.image)
        starts = start_times(args.image, model, args.runs)
        overhead = podman_overhead(args.image, args.runs)
        loads = throughput(args.image, model, args.load_runs, args.duration)

    versions = podman(
        "run", "--rm", "--network", "host", "--entrypoint", "python3", args.image, "-c",
        "import platform, sklearn; print(platform.python_version(), sklearn.__version__)",
    ).stdout.split()  # fmt: skip
    ratios = {
        route: [row[f"container {route}"] / row[f"bare process {route}"] for row in loads]
        for route in ("/invocations", "/ping")
    }
    worst_start = max(starts["container"])
    worst_ratio = min(ratios["/invocations"])
    lines = [
        f"# Image budget (CPU image, EXTRAS={EXTRAS})",
        "",
        f"One run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} CPUs, podman {podman('--version').stdout.split()[-1]} (runc). "
        f"Image `{args.image}` built by `nox -s container` on the local Debian bookworm base "
        f"(Python {versions[0]} in the image, scikit-learn {versions[1]}); bare process: "
        f"Python {platform.python_version()} on the host. Reproduce: "
        "`nox -s container && nox -s bench -- image`. Figures are the worse of the repeated runs.",
        "",
        "| what | measured (worst) | goal | met |",
        "|---|---:|---|---|",
        size_row(total),
        f"| container start to /ping 200, iris | {worst_start:.2f} s | < 2 s | "
        f"{'yes' if worst_start < 2 else 'NO'} |",
        f"| container / bare process, /invocations rps | {worst_ratio:.2f} | >= 0.90 | "
        f"{'yes' if worst_ratio >= 0.9 else 'NO'} |",
        f"| container / bare process, /ping rps | {min(ratios['/ping']):.2f} | (measured) | - |",
        "",
        "## Size: what dominates",
        "",
        "Sizes from `du` inside the image (largest site-packages entries first).",
        "",
        "| part | size |",
        "|---|---:|",
        *size_lines,
        "",
        "## Start-up: `podman run` (or the bare command) to the first /ping 200",
        "",
        "Default workers (one per CPU, as SageMaker's default), iris logistic regression. "
        f"`podman run --rm <image> /bin/true` takes {overhead:.2f} s (worst) of that; the rest is "
        "Python importing the server, numpy, scipy and scikit-learn in each worker and loading "
        "the model, as in the bare process. Load average at the end of this run: "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs (other work "
        "on the machine lengthens start-up; the container and bare rows share it).",
        "",
        "| how | runs | median s | worst s |",
        "|---|---:|---:|---:|",
        *(
            f"| {k} | {len(v)} | {statistics.median(v):.2f} | {max(v):.2f} |"
            for k, v in starts.items()
        ),
        "",
        "## Serving: container against bare process, same model, same load generator",
        "",
        f"One worker pinned to CPU {SERVER_CPU} (`--cpuset-cpus` for the container, `taskset` for "
        f"the process), wrk -t1 -c64 on CPU {LOAD_CPU} (benchmarks/serving/loadgen.py, every "
        f"answer checked), request log off, {args.duration:.0f} s per run after a 2 s warm-up, "
        "host network (no NAT in the path).",
        "",
        "| run | container /invocations | bare /invocations | ratio | container /ping | "
        "bare /ping | ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {i + 1} | {r['container /invocations']:.0f} | {r['bare process /invocations']:.0f}"
            f" | {ratios['/invocations'][i]:.2f} | {r['container /ping']:.0f} | "
            f"{r['bare process /ping']:.0f} | {ratios['/ping'][i]:.2f} |"
            for i, r in enumerate(loads)
        ),
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
