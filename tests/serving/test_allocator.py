"""Large request bodies give their memory back (issue 12: hostile RSS growth).

The heap probe runs in a fresh interpreter: what malloc does depends on what the process did
before. It allocates as served bodies do: one large body (glibc then raises its mmap threshold
to that size), then many smaller large ones with small allocations made between them, which
pin the heap below them once the bodies are freed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest

from endpointkit.serving.allocator import HeapTrimmer
from endpointkit.serving.app import ServingApp
from endpointkit.serving.settings import Settings

from .predictors import Sum

PROBE = """
import os
from endpointkit.serving.allocator import trim_heap

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

big = bytearray(b"1") * (16 << 20)  # a 16 MiB body: glibc raises its threshold to it
del big
base_rss, base_heap = rss(), heap()
bodies, pins = [], []
for _ in range(32):
    bodies.append(bytearray(b"1") * (1 << 20))
    pins.append(bytearray(b"1") * 2048)  # malloc'd after each body, as a request's objects are
on_heap = heap() - base_heap
del bodies
assert trim_heap()
print(on_heap / 2**20, (rss() - base_rss) / 2**20)
"""

glibc = pytest.mark.skipif(
    sys.platform != "linux" or not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc only"
)


@glibc
def test_a_trim_gives_back_what_freed_bodies_left_on_the_heap() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    on_heap, retained = (float(x) for x in out.stdout.split())
    assert on_heap > 24  # the bodies came from the heap: the case a trim has to handle
    assert retained < 4  # MiB still held once they were freed and the heap trimmed


def test_the_server_trims_once_after_large_bodies_and_never_for_small_ones() -> None:
    """Issue 12: 30,000 hostile requests (bodies up to 6 MB) grew a server's RSS by 37-40 MB
    that it never gave back. A large body, or one refused for its size, schedules one trim
    a while after it is answered (allocator.py: HeapTrimmer)."""
    model = Sum()
    model.load("")
    app = ServingApp(Settings.from_env({"ENDPOINTKIT_REQUEST_LOG": "off"}), predictor=model)
    app.trimmer = HeapTrimmer(every_s=0.05)
    row = b"[" + b",".join([b"1.0"] * 60_000) + b"]"  # about 240 KiB

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for _ in range(20):  # small bodies: no trim
                assert (await client.post("/invocations", json=[[1, 2]])).status_code == 200
            await asyncio.sleep(0.2)
            assert app.trimmer.trims == 0
            for _ in range(5):  # large ones, close together: one trim
                r = await client.post("/invocations", content=b"[" + row + b"]")
                assert r.status_code == 200
            await asyncio.sleep(0.2)
            assert app.trimmer.trims == (1 if os.confstr("CS_GNU_LIBC_VERSION") else 0)
            huge = b"[" + b",".join([row] * 30) + b"]"  # about 7 MB: over the 6 MB limit
            assert (await client.post("/invocations", content=huge)).status_code == 413
            await asyncio.sleep(0.2)
            assert app.trimmer.trims == (2 if os.confstr("CS_GNU_LIBC_VERSION") else 0)

    asyncio.run(run())
    app.runtime.close()
