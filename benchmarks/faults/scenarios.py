"""The fault scenarios other than generated requests: each starts what it needs, measures,
stops everything, and returns its figures (seconds, counts) with the target it is held to."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from ._proc import exchange, model_dir, serving

JSON = b"content-type: application/json\r\n"


def _post(path: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nhost: a\r\n%s%scontent-length: %d\r\n\r\n%s" % (
        path,
        JSON,
        extra,
        len(body),
        body,
    )


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- hung predictor ----------------------------------------------------------------------
async def _hung(port: int, timeout_s: float, watch_s: float) -> dict[str, Any]:
    started = time.monotonic()
    hung = asyncio.ensure_future(
        exchange(
            port, _post(b"/predict", b'{"instances": [1], "parameters": {"sleep": 60}}'), 1, 30
        )
    )
    first_unhealthy = None
    unhealthy_status = None
    last_failure = None
    failures = 0
    served = 0

    async def watch_health() -> None:
        """/ping every 20 ms on its own, so requests waiting elsewhere do not delay it."""
        nonlocal first_unhealthy, unhealthy_status
        while first_unhealthy is None and time.monotonic() - started < watch_s:
            answers, _ = await exchange(port, b"GET /ping HTTP/1.1\r\nhost: a\r\n\r\n", 1, 2)
            status = answers[0][0] if answers else 0
            if status != 200:
                first_unhealthy = time.monotonic() - started
                unhealthy_status = status
            await asyncio.sleep(0.02)

    health = asyncio.ensure_future(watch_health())
    while time.monotonic() - started < watch_s:
        answers, _end = await exchange(port, _post(b"/invocations", b"[1]"), 1, 5)
        if answers and answers[0][0] == 200:
            served += 1
        else:
            failures += 1
            last_failure = time.monotonic() - started
        await asyncio.sleep(0.02)
    await health
    hung_answer, _ = await hung
    return {
        "hung_request_status": hung_answer[0][0] if hung_answer else None,
        "health_unhealthy_after_s": first_unhealthy,
        "health_status": unhealthy_status,
        "requests_failed": failures,
        "requests_served": served,
        "last_failure_after_s": last_failure,
    }


def hung(tmp: Path, timeout_s: float = 1.0) -> dict[str, Any]:
    folder, predictor = model_dir(tmp)
    out: dict[str, Any] = {"timeout_s": timeout_s}
    for workers in (1, 2):
        args = ["--model-dir", str(folder), "--predictor", predictor, "--workers", str(workers)]
        args += ["--timeout", str(timeout_s), "--grace", "2"]
        with serving(tmp, args, {"PYTHONPATH": str(folder)}) as server:
            out[f"workers_{workers}"] = asyncio.run(_hung(server.port, timeout_s, 12.0))
    one, two = out["workers_1"], out["workers_2"]
    out["health_503_within_s"] = one["health_unhealthy_after_s"]
    out["recovered_within_s"] = two["last_failure_after_s"] or 0.0
    out["met"] = (
        one["health_status"] == 503
        and one["health_unhealthy_after_s"] is not None
        and one["health_unhealthy_after_s"] <= timeout_s + 1.0
        and out["recovered_within_s"] < 10.0
    )
    return out


# -- slowloris -----------------------------------------------------------------------------
async def _slowloris(port: int, conns: int, seconds: float) -> dict[str, Any]:
    stop = time.monotonic() + seconds
    opened = 0
    cut = 0

    async def slow() -> None:
        nonlocal opened, cut
        while time.monotonic() < stop:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            opened += 1
            try:
                writer.write(b"POST /invocations HTTP/1.1\r\nhost: a\r\n")
                while time.monotonic() < stop:
                    writer.write(b"x")  # one byte of a header a second, never finished
                    await writer.drain()
                    try:
                        if await asyncio.wait_for(reader.read(1024), 1.0) == b"":
                            cut += 1
                            break
                    except asyncio.TimeoutError:
                        pass
            except (ConnectionError, OSError):
                cut += 1
            finally:
                writer.close()

    attackers = [asyncio.ensure_future(slow()) for _ in range(conns)]
    await asyncio.sleep(2.0)  # all connected and dripping
    latencies: list[float] = []
    errors = 0
    while time.monotonic() < stop:
        t0 = time.perf_counter()
        answers, _ = await exchange(port, _post(b"/invocations", b"[1]"), 1, 5)
        if answers and answers[0][0] == 200:
            latencies.append(time.perf_counter() - t0)
        else:
            errors += 1
        await asyncio.sleep(0.05)
    await asyncio.gather(*attackers)
    return {
        "slow_connections": conns,
        "slow_connections_opened": opened,
        "slow_connections_cut_by_server": cut,
        "legit_requests": len(latencies) + errors,
        "legit_errors": errors,
        "legit_p50_ms": _pct(latencies, 0.5) * 1000,
        "legit_p99_ms": _pct(latencies, 0.99) * 1000,
    }


def slowloris(tmp: Path, conns: int = 200, seconds: float = 30.0) -> dict[str, Any]:
    folder, predictor = model_dir(tmp)
    args = ["--model-dir", str(folder), "--predictor", predictor, "--workers", "1"]
    with serving(tmp, args, {"PYTHONPATH": str(folder)}) as server:
        out = asyncio.run(_slowloris(server.port, conns, seconds))
    out["seconds"] = seconds
    out["met"] = out["legit_errors"] == 0 and out["legit_p99_ms"] < 50
    return out


# -- 1,000 connections on a 100 ms model ----------------------------------------------------
# The wait that counts is the server's: from the moment it has read a request to its answer.
# The load client's own figures (connect + answer, seen from one Python event loop driving
# 1,000 connections) include the client's scheduling lag, which is measured beside them.
async def _server_waits(port: int, timeout_s: float) -> dict[str, int]:
    """The server's own latency histogram for /invocations: how many answers took longer
    than `timeout_s` by its clock (the bucket bounds include the timeout)."""
    answers, _ = await exchange(port, b"GET /metrics HTTP/1.1\r\nhost: a\r\n\r\n", 1, 10)
    text = answers[0][2].decode() if answers else ""
    within = total = 0
    for line in text.splitlines():
        if "invocations" not in line:
            continue
        if not line.startswith("endpointkit_request_duration_seconds_"):
            continue
        value = int(float(line.rsplit(" ", 1)[1]))
        if line.startswith("endpointkit_request_duration_seconds_count"):
            total += value
        elif f'le="{timeout_s:g}"' in line:
            within += value
    return {"server_answers": total, "server_past_timeout": total - within}


async def _overload(port: int, conns: int, seconds: float, timeout_s: float) -> dict[str, Any]:
    stop = time.monotonic() + seconds
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    no_retry_after = 0
    ends: dict[str, int] = {}
    connects: list[float] = []
    lag = 0.0

    async def watch_lag() -> None:
        nonlocal lag
        loop = asyncio.get_running_loop()
        while time.monotonic() < stop:
            t0 = loop.time()
            await asyncio.sleep(0.05)
            lag = max(lag, loop.time() - t0 - 0.05)

    async def client() -> None:
        nonlocal no_retry_after
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            raw = _post(b"/invocations", b"[1]")
            answers, end = await exchange(port, raw, 1, timeout_s + 10, connects)
            latencies.append(time.perf_counter() - t0)
            ends[end] = ends.get(end, 0) + 1
            if answers:
                status, headers, _ = answers[0]
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status == 503 and b"retry-after" not in headers:
                    no_retry_after += 1
            else:
                await asyncio.sleep(0.1)

    await asyncio.gather(watch_lag(), *(client() for _ in range(conns)))
    await asyncio.sleep(0.5)
    server = await _server_waits(port, timeout_s)
    after: list[float] = []
    for _ in range(20):
        t0 = time.perf_counter()
        answers, _ = await exchange(port, _post(b"/invocations", b"[1]"), 1, 10)
        after.append(time.perf_counter() - t0 if answers and answers[0][0] == 200 else 99.0)
    return {
        "connections": conns,
        "seconds": seconds,
        "timeout_s": timeout_s,
        "statuses": statuses,
        "ends": ends,
        **server,
        "client_max_wait_s": max(latencies) if latencies else None,
        "client_p99_wait_s": _pct(latencies, 0.99),
        "client_past_timeout": sum(1 for x in latencies if x > timeout_s),
        "client_max_connect_s": max(connects) if connects else None,
        "client_loop_max_lag_s": lag,
        "503_without_retry_after": no_retry_after,
        "after_load_max_s": max(after),
        "after_load_p50_s": _pct(after, 0.5),
    }


def overload(tmp: Path, conns: int = 1000, seconds: float = 10.0) -> dict[str, Any]:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < conns + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, conns + 512), hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    conns = min(conns, soft - 200)
    folder, predictor = model_dir(tmp)
    args = ["--model-dir", str(folder), "--predictor", predictor, "--workers", "1"]
    args += ["--timeout", "5"]
    env = {"PYTHONPATH": str(folder), "FAULTS_DELAY_S": "0.1"}
    with serving(tmp, args, env) as server:
        out = asyncio.run(_overload(server.port, conns, seconds, 5.0))
    out["met"] = (
        out["server_answers"] > 0
        and out["server_past_timeout"] == 0
        and out["503_without_retry_after"] == 0
        and out["after_load_max_s"] < 1.0
    )
    return out


# -- SIGTERM with 50 in flight --------------------------------------------------------------
async def _sigterm(server: Any, n: int) -> dict[str, int]:
    port = server.port
    body = b'{"instances": [1]}'
    calls = [
        asyncio.ensure_future(exchange(port, _post(b"/predict", body), 1, 30)) for _ in range(n)
    ]
    await asyncio.sleep(0.5)  # all connected, the first ones in the model
    server.proc.send_signal(signal.SIGTERM)
    outcomes: dict[str, int] = {}
    for answers, end in await asyncio.gather(*calls):
        key = str(answers[0][0]) if answers else end
        outcomes[key] = outcomes.get(key, 0) + 1
        if answers and answers[0][0] == 503 and b"retry-after" not in answers[0][1]:
            # not the figure (200 or 503), but every other 503 of ours says when to retry
            try:
                code = json.loads(answers[0][2]).get("code", "?")
            except (ValueError, AttributeError):
                code = "?"
            key = f"503 without Retry-After ({code})"
            outcomes[key] = outcomes.get(key, 0) + 1
    return outcomes


def sigterm(tmp: Path, n: int = 50) -> dict[str, Any]:
    folder, predictor = model_dir(tmp)
    out: dict[str, Any] = {"in_flight": n}
    for workers in (1, 2):
        args = ["--model-dir", str(folder), "--predictor", predictor, "--workers", str(workers)]
        args += ["--grace", "1"]
        env = {"PYTHONPATH": str(folder), "FAULTS_DELAY_S": "0.1"}
        with serving(tmp, args, env) as server:
            out[f"workers_{workers}"] = asyncio.run(_sigterm(server, n))
            server.proc.wait(timeout=30)
            out[f"workers_{workers}_exit"] = server.proc.returncode
    out["met"] = all(
        {k for k in out[f"workers_{w}"] if not k.startswith("503 without")} <= {"200", "503"}
        for w in (1, 2)
    )
    return out


# -- kill -9 of a version under load through the gateway ------------------------------------
async def _load(
    port: int, path: bytes, concurrency: int, seconds: float, kill_at: float, kill: Any
) -> dict[str, Any]:
    from endpointkit.adapters.local._http.client import Pool, UpstreamError, UpstreamTimeout

    pool = Pool(port)
    stop = time.monotonic() + seconds
    kill_time = time.monotonic() + kill_at
    results: list[tuple[str, str, float, float]] = []  # (id, outcome, start, end)
    killed: dict[str, Any] = {}
    in_flight: set[str] = set()

    async def worker() -> None:
        while time.monotonic() < stop:
            rid = uuid.uuid4().hex
            body = json.dumps({"instances": [rid]}).encode()
            t0 = time.monotonic()
            in_flight.add(rid)
            try:
                status, headers, _ = await pool.request(
                    b"POST", path, [(b"content-type", b"application/json")], body, 30
                )
                version = dict(headers).get(b"x-endpointkit-version", b"?").decode()
                outcome = f"{status} {version}"
            except (UpstreamError, UpstreamTimeout) as exc:
                outcome = type(exc).__name__
            in_flight.discard(rid)
            results.append((rid, outcome, t0, time.monotonic()))

    async def killer() -> None:
        await asyncio.sleep(max(0.0, kill_time - time.monotonic()))
        killed.update(await kill())
        killed["client_in_flight"] = len(in_flight)
        killed["at"] = time.monotonic()

    try:
        await asyncio.gather(killer(), *(worker() for _ in range(concurrency)))
    finally:
        pool.close()
    return {"results": results, "killed": killed}


def kill9(tmp: Path, concurrency: int = 16, seconds: float = 8.0) -> dict[str, Any]:
    from endpointkit.adapters.local import LocalBackend
    from endpointkit.adapters.local.supervisor import kill_group
    from endpointkit.endpoint import Endpoint
    from endpointkit.spec import VersionSpec

    folder, predictor = model_dir(tmp)
    seen = tmp / "seen.log"
    backend = LocalBackend(home=tmp / "home", health_interval=0.2)
    try:
        env = {"FAULTS_SEEN": str(seen), "FAULTS_DELAY_S": "0.02"}
        specs = [
            VersionSpec(name=name, model=str(folder), predictor=predictor, env=env)
            for name in ("v1", "v2")
        ]
        ep = Endpoint.create("faults", specs[0], backend=backend, timeout=120)
        ep.deploy(specs[1], traffic=50, timeout=120)
        gateway_port = int(backend.gateway_url().rsplit(":", 1)[1])
        version = ep.status().version("v1")
        assert version is not None
        pid = int(version.details["pid"])

        async def kill() -> dict[str, Any]:
            status = await asyncio.to_thread(backend.gateway_status)
            inflight = status["endpoints"]["faults"]["versions"]["v1"]["inflight"]
            kill_group(pid)
            return {"gateway_in_flight_on_v1": inflight}

        run = asyncio.run(
            _load(
                gateway_port, b"/endpoints/faults/predict", concurrency, seconds, seconds / 3, kill
            )
        )
        ep.delete()
        backend.wait_deleted("faults", timeout=60)
    finally:
        backend.stop_gateway()
        backend.close()
    outcomes: dict[str, int] = {}
    failed_ids = []
    for rid, outcome, _, _ in run["results"]:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if not outcome.startswith("200"):
            failed_ids.append(rid)
    counts: dict[str, int] = {}
    for line in seen.read_text().splitlines():
        counts[line.split()[1]] = counts.get(line.split()[1], 0) + 1
    replays = sum(1 for c in counts.values() if c > 1)
    out = {
        "concurrency": concurrency,
        "seconds": seconds,
        "requests": len(run["results"]),
        "outcomes": outcomes,
        "failed": len(failed_ids),
        "replayed_posts": replays,
        **run["killed"],
    }
    out.pop("at", None)
    # Every failure must be a request the gateway had handed to v1 when it died (a 502 naming
    # v1): none on v2, none refused for want of a version. The gateway's count just before the
    # SIGKILL misses requests it handed to v1 between the signal and the kernel closing v1's
    # sockets (the process's memory is torn down first), so it is reported, not the bound.
    out["failed_not_on_v1"] = sum(
        n for o, n in outcomes.items() if o not in ("200 v1", "200 v2", "502 v1")
    )
    out["met"] = replays == 0 and out["failed_not_on_v1"] == 0 and out["failed"] <= concurrency
    return out
