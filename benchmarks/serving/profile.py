"""Where the microseconds go: py-spy samples of a server under wrk load, turned into
microseconds per request.

py-spy cannot attach to a running process in this container ("Failed to find python version"), so
it starts the server itself (`py-spy record --subprocesses --duration D -- <server>`); the server
dies with py-spy at the end of D. Only the thread holding the GIL is sampled (``--gil``): threads
blocked in a queue or in epoll would otherwise fill the profile. Samples taken while the server
imports and starts are dropped (stacks through the import machinery or the lifespan start-up); the
rest are the load window. Caveat: in our runs py-spy never showed the model thread holding the GIL;
its work lands on the event loop's ``Executor._submit`` (the ``put`` that woke it), which
profile.md therefore counts as the model-thread hop. Each frame's share of those samples times the
server's CPU time per request, measured from /proc over the same window, gives microseconds per
request. Sampling is non-blocking (py-spy reads the process without stopping it), so the measured
CPU is not inflated by it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import loadgen, peers

# a stack through the import machinery or the lifespan start-up is the server starting; not
# "<module> (": with ``python -m`` every stack of the main thread, the event loop's too, has it
STARTUP_MARKERS = ("_find_and_load", "lifespan.startup", "startup (")


def py_spy() -> str | None:
    """py-spy next to this interpreter, or on PATH."""
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.exists() else shutil.which("py-spy")


@dataclass
class Profile:
    """A server's samples under load and its CPU time per request in the same window."""

    name: str
    path: str
    cpu_us: float
    requests: int
    samples: int
    self_us: list[tuple[str, float]] = field(default_factory=list)
    inclusive_us: list[tuple[str, float]] = field(default_factory=list)


def _short(frame: str) -> str:
    """``func (/long/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py:12)``."""
    for marker in ("site-packages/", "/work/", "lib/python3"):
        i = frame.find(marker)
        if i >= 0:
            head = frame[: frame.find("(") + 1]
            tail = frame[i + len(marker) :]
            if marker == "/work/":  # /work/<worktree>/endpointkit/... -> endpointkit/...
                tail = tail.split("/", 2)[-1] if tail.count("/") >= 2 else tail
            return head + tail
    return frame


def _function(frame: str) -> str:
    """The frame without its line number: ``func (pkg/mod.py)``."""
    short = _short(frame)
    return short.rsplit(":", 1)[0] + ")" if short.endswith(")") and ":" in short else short


def parse(raw: str, top: int) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(load-window samples, top self frames, top inclusive functions) from py-spy raw output."""
    self_counts: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        if any(m in stack for m in STARTUP_MARKERS):
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        self_counts[_short(frames[-1])] += count
        for fn in {_function(f) for f in frames}:
            incl[fn] += count
    return total, self_counts.most_common(top), incl.most_common(top * 3)


def profile(
    spec: peers.Spec,
    path: str,
    body: bytes,
    expected: bytes,
    *,
    cpus: str | None,
    client_cpu: str | None,
    load_s: float = 8.0,
    budget_s: float = 60.0,
    top: int = 15,
) -> Profile | None:
    """Run ``spec`` under py-spy for ``budget_s``; wrk loads it from ready until the end."""
    exe = py_spy()
    if exe is None:
        print("  py-spy not installed: no profile (pip install py-spy)", flush=True)
        return None
    out = Path(tempfile.mkdtemp(prefix="ek-bench-prof-")) / "raw.txt"
    wrapped = peers.Spec(
        spec.name,
        [
            exe,
            "record",
            "--nonblocking",
            "--gil",  # only the thread holding the GIL: CPU in Python, not threads waiting
            "--subprocesses",
            "--rate",
            "250",
            "--duration",
            str(int(budget_s)),
            "--format",
            "raw",
            "-o",
            str(out),
            "--",
            *spec.cmd,
        ],
        spec.port,
        spec.env,
        spec.ready_path,
        spec.ready_post,
        spec.cwd,
    )
    started = time.monotonic()
    with peers.start(wrapped, cpus) as peer:
        left = budget_s - (time.monotonic() - started) - 2.0
        if left < 3.0:
            print(f"  {spec.name}: started too slowly to profile within {budget_s:.0f} s")
            return None
        seconds = min(load_s, left)
        pid = peer.proc.pid
        cpu0, spy0 = peers.cpu_seconds(pid), _own_cpu(pid)
        run = loadgen.wrk(
            peer.url + path,
            "POST",
            body,
            expected,
            duration_s=seconds,
            connections=64,
            cpu=client_cpu,
        )
        # py-spy (the tree's root) samples from its own process: leave its CPU out
        cpu_s = peers.cpu_seconds(pid) - cpu0 - (_own_cpu(pid) - spy0)
        deadline = time.monotonic() + budget_s + 30
        while peer.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # py-spy writes its file when its duration is up
    requests = run.good + run.bad
    raw = out.read_text() if out.exists() else ""
    shutil.rmtree(out.parent, ignore_errors=True)
    total, self_frames, incl = parse(raw, top)
    if not total or not requests:
        return None
    cpu_us = cpu_s * 1e6 / requests
    # py-spy samples only while loaded (after ready): the load window dominates them
    scale = cpu_us / total
    return Profile(
        spec.name,
        path,
        cpu_us,
        requests,
        total,
        [(f, n * scale) for f, n in self_frames],
        [(f, n * scale) for f, n in incl],
    )


def _own_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` alone (not its children)."""
    try:
        fields = peers._stat(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def as_dict(p: Profile) -> dict[str, Any]:
    return p.__dict__


# -- `python -m benchmarks.serving.profile`: CPU per request and profiles -> profile.md --------

RESULTS = Path(__file__).resolve().parents[1] / "results"
ONE = b'{"instances": [[1.0, 2.0, 3.0, 4.0]]}'
ONE_OUT = b'{"predictions":[10.0]}'
KEEP = ("endpointkit/", "uvicorn/", "floor.py", "orjson", "models.py", "asyncio", "uvloop")


def _cpu_rows(args: Any, server_cpu: str | None, client_cpu: str | None) -> list[dict[str, Any]]:
    """Worst-of-``args.repeats`` server CPU per request: the floor, then /invocations and
    Vertex /predict, at each worker count in ``args.workers`` (N workers pinned to N CPUs)."""
    from . import _closed

    rows: list[dict[str, Any]] = []
    cpus = sorted(os.sched_getaffinity(0))
    for n in args.workers:
        pinned = server_cpu if n == 1 else ",".join(str(c) for c in cpus[:n])
        specs = [
            (peers.floor(workers=n), ["/predict"]),
            (peers.endpointkit("models:Sum", workers=n), ["/invocations", "/predict"]),
        ]
        if args.before:  # the same server from another source tree, first on its path
            before = peers.endpointkit("models:Sum", workers=n, name="endpointkit (before)")
            path = os.pathsep.join([args.before, str(peers.APPS), str(peers.HERE), str(peers.ROOT)])
            before.env = {"PYTHONPATH": path}
            before.cwd = args.before  # ``-m`` puts the working directory first on sys.path
            specs.insert(1, (before, ["/invocations", "/predict"]))
        for spec, paths in specs:
            with peers.start(spec, pinned) as peer:
                for path in paths:
                    row = _closed(
                        peer, path, "POST", ONE, ONE_OUT, args, client_cpu=client_cpu,
                        threads=n, conns=64 * n,
                    )  # fmt: skip
                    row["workers"] = n
                    rows.append(row)
                    print(
                        f"  {n}w {row['peer']:<20} {path:<13} {row['cpu_us']:7.1f} us CPU/req "
                        f"(median {row['cpu_us_median']:.1f}), {row['rps']:.0f} req/s",
                        flush=True,
                    )
    return rows


PARTS = (
    "read and parse the request (data_received)",
    "send the answer (RequestResponseCycle.send)",
    "model-thread hop (Executor.call, the model thread's loop)",
    "predict itself",
    "the app, the rest (routing, contract, JSON, metrics)",
    "event loop and the rest",
    "total",
)


def _parts(p: Profile) -> dict[str, float]:
    """The profile's inclusive time split into PARTS (functions matched by name)."""
    incl = p.inclusive_us

    def us(*names: str) -> float:
        return sum(v for f, v in incl if any(f.startswith(n + " ") for n in names))

    parse = us("LimitedHttpToolsProtocol.data_received")
    if not parse:  # the floor: uvicorn's own protocol
        parse = us("HttpToolsProtocol.data_received")
    send = us("RequestResponseCycle.send")
    hop = us("Executor.call") + us("Executor._work")
    predict = us("Sum.predict")
    hop -= min(hop, us("Sum.predict"))  # predict runs inside the model thread's loop
    app = us("ServingApp.__call__", "app") - send - us("Executor.call")
    app = max(0.0, app - (0.0 if us("Executor._work") else predict))
    rest = max(0.0, p.cpu_us - parse - send - hop - predict - app)
    values = (parse, send, hop, predict, app, rest, p.cpu_us)
    return dict(zip(PARTS, values, strict=True))


def _write(rows: list[dict[str, Any]], profiles: list[Profile], args: Any) -> Path:
    load = [round(x, 2) for x in os.getloadavg()]
    lines = [
        "# Where the microseconds go: endpointkit's hot path against the floor",
        "",
        "Generated by `python -m benchmarks.serving.profile` (benchmarks/serving/profile.py). "
        f"Row-sum model (`models:Sum`), body `{ONE.decode()}`, wrk -c64 per worker; "
        f"{args.repeats} runs of {args.duration:g} s after {args.warmup:g} s warm-up; "
        f"load average at the end {load} on {os.cpu_count()} CPUs.",
    ]
    if args.before:
        what = f" ({args.before_label})" if args.before_label else ""
        lines += [
            "",
            f"`endpointkit (before)`: the same server from another source tree{what}, in the "
            "same run.",
        ]
    lines += [
        "",
        "## Server CPU per request (worst of the repeats; median in brackets)",
        "",
        "| workers | server | path | us CPU/req | x floor | req/s (worst) |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for row in rows:
        floor_us = next(
            r["cpu_us"] for r in rows if r["workers"] == row["workers"] and "floor" in r["peer"]
        )
        lines.append(
            f"| {row['workers']} | {row['peer']} | {row['path']} | {row['cpu_us']:.1f} "
            f"({row['cpu_us_median']:.1f}) | {row['cpu_us'] / floor_us:.2f} | {row['rps']:.0f} |"
        )
    if profiles:
        lines += [
            "",
            "## Where the microseconds go (py-spy, us per request)",
            "",
            "Inclusive time of each part (the server's CPU per request spread over the samples "
            "taken while a thread held the GIL; C work with the GIL released, such as socket "
            "writes, lands on the Python line that called it).",
            "",
            "| part | " + " | ".join(f"{p.name} {p.path}" for p in profiles) + " |",
            "|---|" + "---:|" * len(profiles),
        ]
        split = [_parts(p) for p in profiles]
        for part in PARTS:
            lines.append(f"| {part} | " + " | ".join(f"{d[part]:.1f}" for d in split) + " |")
    for p in profiles:
        lines += [
            "",
            f"## {p.name} {p.path}: {p.cpu_us:.1f} us CPU/req "
            f"({p.samples} py-spy samples over {p.requests} requests)",
            "",
            "| self us/req | frame |",
            "|---:|---|",
        ]
        lines += [f"| {us:.1f} | `{frame}` |" for frame, us in p.self_us]
        lines += ["", "| inclusive us/req | function |", "|---:|---|"]
        keep = [(f, us) for f, us in p.inclusive_us if any(k in f for k in KEEP)]
        lines += [f"| {us:.1f} | `{f}` |" for f, us in keep[:30]]
    out = RESULTS / "profile.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    """CPU per request (worst of repeats) for the floor, /invocations and Vertex /predict, then
    py-spy profiles of each under load; writes benchmarks/results/profile.md."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving.profile")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", default="1", help="comma-separated worker counts")
    parser.add_argument("--profile-s", type=float, default=6.0, help="load seconds per profile")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="also measure endpointkit imported from DIR (a checkout of the code before a "
        "change, e.g. from `git archive main endpointkit`), in the same run",
    )
    parser.add_argument(
        "--before-label", default="", help="what --before is, for the report (e.g. a commit)"
    )
    args = parser.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",")]
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (str(cpus[0]), str(cpus[1])) if len(cpus) >= 2 else (None, None)
    rows = _cpu_rows(args, server_cpu, client_cpu)
    profiles: list[Profile] = []
    if not args.no_profile:
        for spec, path in (
            (peers.floor(), "/predict"),
            (peers.endpointkit("models:Sum"), "/invocations"),
            (peers.endpointkit("models:Sum"), "/predict"),
        ):
            p = profile(
                spec, path, ONE, ONE_OUT, cpus=server_cpu, client_cpu=client_cpu,
                load_s=args.profile_s, budget_s=args.profile_s + 12, top=25,
            )  # fmt: skip
            if p is not None:
                profiles.append(p)
                print(f"  profile {p.name} {path}: {p.cpu_us:.1f} us/req", flush=True)
    print(f"wrote {_write(rows, profiles, args)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
