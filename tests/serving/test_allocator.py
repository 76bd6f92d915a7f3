"""Large request bodies give their memory back (issue 12: hostile RSS growth).

Each case runs in a fresh interpreter: the allocator setting is process-wide and a test
process has already moved glibc's threshold. What the child does is what a served body does
to malloc: one large body, then many smaller large ones with small allocations made between
them (pinning the heap), then all freed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import os, sys
from endpointkit.serving.app import create_app
from endpointkit.serving.settings import Settings

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE")

def heap():  # the main arena's size: what malloc took with brk rather than its own mmap
    with open("/proc/self/maps") as f:
        for line in f:
            if line.rstrip().endswith("[heap]"):
                start, end = line.split()[0].split("-")
                return int(end, 16) - int(start, 16)
    return 0

if sys.argv[1] == "served":
    create_app(Settings(model_dir="."))  # what every worker process runs first
big = bytearray(b"1") * (16 << 20)  # a 16 MiB body: glibc would raise its threshold to it
del big
base_rss, base_heap = rss(), heap()
bodies, pins = [], []
for _ in range(32):
    bodies.append(bytearray(b"1") * (1 << 20))
    pins.append(bytearray(b"1") * 2048)  # malloc'd after each body, as a request's objects are
on_heap = heap() - base_heap
del bodies
print(on_heap / 2**20, (rss() - base_rss) / 2**20)
"""

glibc = pytest.mark.skipif(
    sys.platform != "linux" or not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc only"
)


def _probe(mode: str, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(MiB the 32 bodies took from the heap, MiB of RSS still held once they are freed)."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    child_env.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env,
        check=True,
    )
    on_heap, retained = out.stdout.split()
    return float(on_heap), float(retained)


@glibc
def test_a_server_process_gives_large_bodies_memory_back() -> None:
    # Without the fixed threshold the bodies come from the heap (the control shows the probe
    # can tell); how much of it stays depends on what else the heap holds.
    on_heap, _ = _probe("bare")
    assert on_heap > 24
    on_heap, retained = _probe("served")
    assert on_heap < 4
    assert retained < 4


@glibc
def test_malloc_mmap_threshold_from_the_environment_wins() -> None:
    from endpointkit.serving.allocator import fix_mmap_threshold

    os.environ["MALLOC_MMAP_THRESHOLD_"] = "1048576"
    try:
        assert fix_mmap_threshold() is False
    finally:
        del os.environ["MALLOC_MMAP_THRESHOLD_"]
