"""What running ``predict`` off the event loop costs: microseconds per ``/invocations`` request
through the whole app (routing, JSON, the contract), in process, on uvloop, no sockets.

``python -m benchmarks.serving.hop [--requests N]`` prints, for a row-sum model, the cost per
request with ``predict`` inline (on the loop) and in the model thread, one request at a time
(the latency a lone client pays) and 64 at once (the throughput under load).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import MutableMapping
from typing import Any

from endpointkit.serving.app import ServingApp
from endpointkit.serving.settings import Settings

BODY = b'{"instances": [[1, 2, 3, 4]]}'
SCOPE: dict[str, Any] = {
    "type": "http",
    "method": "POST",
    "path": "/invocations",
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"29")],
}


class _Sum:
    inline: bool | None = None

    def load(self, model_dir: str) -> None:
        pass

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        return [float(sum(row)) for row in instances]


def _predictor(inline: bool | None) -> Any:
    cls = type("Sum", (_Sum,), {"inline": inline})
    return cls()


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": BODY, "more_body": False}


async def _run(app: ServingApp, requests: int, concurrency: int) -> float:
    statuses: list[int] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def client(n: int) -> None:
        for _ in range(n):
            await app(SCOPE, _receive, send)

    per = requests // concurrency
    t0 = time.perf_counter()
    await asyncio.gather(*(client(per) for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    assert statuses == [200] * len(statuses), set(statuses)
    return seconds / (per * concurrency) * 1e6


def measure(inline: bool | None, requests: int, concurrency: int, repeats: int = 5) -> float:
    """Median microseconds per request."""
    import uvloop

    app = ServingApp(Settings(request_log="off"), predictor=_predictor(inline))

    async def main() -> list[float]:
        await _run(app, 2000, concurrency)  # warm up (and let an auto executor settle)
        return [await _run(app, requests, concurrency) for _ in range(repeats)]

    try:
        return statistics.median(uvloop.run(main()))
    finally:
        app.runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    for label, inline in (("inline", True), ("thread", False), ("unset", None)):
        for concurrency in (1, 64):
            us = measure(inline, args.requests, concurrency)
            print(f"{label:7s} concurrency {concurrency:3d}: {us:6.1f} us/request")


if __name__ == "__main__":
    main()
