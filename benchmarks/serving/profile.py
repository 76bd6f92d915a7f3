"""Where the microseconds go: py-spy samples of a server under wrk load, turned into
microseconds per request.

py-spy cannot attach to a running process in this container ("Failed to find python version"),
so it starts the server itself (`py-spy record --subprocesses --duration D -- <server>`); the
server dies with py-spy at the end of D. Samples taken while the server imports and starts are
dropped (stacks through the import machinery or the lifespan start-up); the rest are the load
window. Each frame's share of those samples times the server's CPU time per request, measured
from /proc over the same window, gives microseconds per request. Sampling is non-blocking
(py-spy reads the process without stopping it), so the measured CPU is not inflated by it.
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

STARTUP_MARKERS = ("_find_and_load", "lifespan.startup", "startup (", "<module> (")


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
