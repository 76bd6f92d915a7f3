"""Load generators: wrk (closed loop, capacity) and a small open-loop generator that times each
request from its intended send time (wrk2-style, no coordinated omission). Both check every
answer: status 200 and the exact expected body."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) good = 0; bad = 0 end
wrk.method = "%(method)s"
wrk.body = %(body)s
%(headers)s
local expected = %(expected)s
function response(status, headers, body)
  if %(check)s then good = good + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local g, b = 0, 0
  for _, t in ipairs(threads) do g = g + t:get("good"); b = b + t:get("bad") end
  io.write(string.format("CHECK good=%%d bad=%%d\\n", g, b))
  io.write(string.format("LAT p50=%%d p99=%%d\\n", latency:percentile(50), latency:percentile(99)))
end
"""


def _lua_str(data: bytes) -> str:
    return '"' + "".join(f"\\{b:03d}" for b in data) + '"'


@dataclass
class ClosedLoop:
    """One wrk run."""

    rps: float
    p50_ms: float
    p99_ms: float
    good: int
    bad: int
    errors: int


def wrk(
    url: str,
    method: str,
    body: bytes,
    expected: bytes,
    *,
    duration_s: float,
    connections: int,
    cpu: str | None,
    threads: int = 1,
    headers: dict[str, str] | None = None,
    check: str | None = None,
) -> ClosedLoop:
    """Run wrk against ``url``; every response is compared with ``expected``.

    ``headers`` replaces the default ``Content-Type: application/json``. ``check``, a Lua
    boolean expression over ``status``, ``body`` and ``expected``, replaces the exact
    comparison (for answers whose bytes may vary, such as fp16 outputs under batching)."""
    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    sent = headers if headers is not None else {"Content-Type": "application/json"}
    script = _LUA % {
        "method": method,
        "headers": "\n".join(
            f"wrk.headers[{_lua_str(k.encode())}] = {_lua_str(v.encode())}" for k, v in sent.items()
        ),
        "check": check or "status == 200 and body == expected",
        "body": _lua_str(body) if body else "nil",
        "expected": _lua_str(expected),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    cmd = [
        exe,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "-s",
        f.name,
        url,
    ]
    if cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    Path(f.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    check = re.search(r"CHECK good=(\d+) bad=(\d+)", out)
    lat = re.search(r"LAT p50=(\d+) p99=(\d+)", out)
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors = sum(int(x) for x in m.groups())
    if check is None or lat is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return ClosedLoop(
        rps=rps,
        p50_ms=int(lat.group(1)) / 1000.0,
        p99_ms=int(lat.group(2)) / 1000.0,
        good=int(check.group(1)),
        bad=int(check.group(2)),
        errors=errors,
    )


@dataclass
class OpenLoop:
    """One open-loop run at a fixed offered rate."""

    offered: float
    achieved: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    good: int
    bad: int


class _Conn(asyncio.Protocol):
    def __init__(self, pool: asyncio.Queue[_Conn], results: list[float], expected: bytes) -> None:
        self.pool = pool
        self.results = results
        self.expected = expected
        self.buf = b""
        self.started = 0.0
        self.bad = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, intended: float) -> None:
        self.started = intended
        assert self.transport is not None
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower() + b"\r\n"
        i = head.find(b"content-length:")
        if i < 0:  # only Content-Length framing is expected from the servers under test
            self.bad += 1
            self.buf = b""
            if self.transport is not None:
                self.transport.close()
            return
        length = int(head[i + 15 : head.find(b"\r\n", i)])
        if len(self.buf) < end + 4 + length:
            return
        body = self.buf[end + 4 : end + 4 + length]
        ok = self.buf.startswith(b"HTTP/1.1 200") and body == self.expected
        self.buf = self.buf[end + 4 + length :]
        now = time.perf_counter()
        if ok:
            self.results.append(now - self.started)
        else:
            self.bad += 1
        self.pool.put_nowait(self)


async def _open_loop(
    host: str,
    port: int,
    request: bytes,
    expected: bytes,
    rate: float,
    duration_s: float,
    conns: int,
) -> OpenLoop:
    loop = asyncio.get_running_loop()
    pool: asyncio.Queue[_Conn] = asyncio.Queue()
    results: list[float] = []
    all_conns = []
    for _ in range(conns):
        _, proto = await loop.create_connection(lambda: _Conn(pool, results, expected), host, port)
        all_conns.append(proto)
        pool.put_nowait(proto)
    total = int(rate * duration_s)
    t0 = time.perf_counter() + 0.05
    waiting: list[asyncio.Task[None]] = []

    async def dispatch(intended: float) -> None:
        conn = await pool.get()  # no free connection: the request waits, its clock running
        conn.send(request, intended)

    for i in range(total):
        intended = t0 + i / rate
        delay = intended - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        if pool.empty():
            waiting.append(loop.create_task(dispatch(intended)))
        else:
            pool.get_nowait().send(request, intended)
    with contextlib.suppress(asyncio.TimeoutError):  # dead connections: missing answers are bad
        await asyncio.wait_for(asyncio.gather(*waiting), duration_s + 10)
    deadline = time.perf_counter() + 10
    bad = 0
    while time.perf_counter() < deadline:
        bad = sum(c.bad for c in all_conns)
        if len(results) + bad >= total:
            break
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - t0
    for c in all_conns:
        if c.transport is not None:
            c.transport.close()
    results.sort()

    def pct(p: float) -> float:
        if not results:
            return float("nan")
        return results[min(len(results) - 1, int(p * len(results)))] * 1000.0

    return OpenLoop(
        offered=rate,
        achieved=len(results) / elapsed,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        p999_ms=pct(0.999),
        good=len(results),
        bad=bad + (total - len(results) - bad),
    )


def open_loop(
    host: str,
    port: int,
    path: str,
    body: bytes,
    expected: bytes,
    *,
    rate: float,
    duration_s: float,
    connections: int = 128,
) -> OpenLoop:
    """Offer ``rate`` requests/s for ``duration_s``; latency counted from the intended send."""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    return runner(_open_loop(host, port, request, expected, rate, duration_s, connections))
