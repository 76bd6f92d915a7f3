"""In-process Prometheus metrics: plain counters on the hot path, text rendered on scrape.

Each worker process keeps its own numbers (no cross-process aggregation); a ``worker`` label
(the process id) keeps series from different workers apart.
"""

from __future__ import annotations

import os
from bisect import bisect_left

LATENCY_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
LATENCY_BUCKETS += (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0)


class Histogram:
    """Cumulative-on-render histogram."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Record one value."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def render(self, name: str, labels: str) -> list[str]:
        """Prometheus text lines for this histogram."""
        sep = "," if labels else ""
        lines = []
        acc = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            acc += n
            lines.append(f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {acc}')
        acc += self.counts[-1]
        lines.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {acc}')
        lines.append(f"{name}_sum{{{labels}}} {self.sum:.6f}")
        lines.append(f"{name}_count{{{labels}}} {acc}")
        return lines


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Requests by route and status, latency per route, the same for gRPC calls by method,
    batch sizes, in-flight (HTTP and gRPC together), readiness."""

    def __init__(self, version: str | None) -> None:
        base = f'worker="{os.getpid()}"'
        if version:
            base += f',version="{_escape(version)}"'
        self.base = base
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.batch_sizes = Histogram(BATCH_BUCKETS)
        self.grpc_requests: dict[tuple[str, str], int] = {}
        self.grpc_latency: dict[str, Histogram] = {}
        self.in_flight = 0
        self.ready = False
        self.predict_inline = False

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        key = (route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(route)
        if hist is None:
            hist = self.latency[route] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def observe_grpc(self, method: str, code: str, seconds: float) -> None:
        """Count one finished gRPC call (``code``: the status name, ``OK``...)."""
        key = (method, code)
        self.grpc_requests[key] = self.grpc_requests.get(key, 0) + 1
        hist = self.grpc_latency.get(method)
        if hist is None:
            hist = self.grpc_latency[method] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition (format 0.0.4)."""
        b = self.base
        out = [
            "# HELP endpointkit_requests_total Requests by route and status.",
            "# TYPE endpointkit_requests_total counter",
        ]
        for (route, status), n in sorted(self.requests.items()):
            out.append(
                f'endpointkit_requests_total{{{b},route="{_escape(route)}",status="{status}"}} {n}'
            )
        out += [
            "# HELP endpointkit_request_duration_seconds Request latency by route.",
            "# TYPE endpointkit_request_duration_seconds histogram",
        ]
        for route, hist in sorted(self.latency.items()):
            out += hist.render(
                "endpointkit_request_duration_seconds", f'{b},route="{_escape(route)}"'
            )
        if self.grpc_requests:
            out += [
                "# HELP endpointkit_grpc_requests_total gRPC calls by method and status code.",
                "# TYPE endpointkit_grpc_requests_total counter",
            ]
            for (method, code), n in sorted(self.grpc_requests.items()):
                out.append(
                    f'endpointkit_grpc_requests_total{{{b},method="{_escape(method)}",'
                    f'code="{code}"}} {n}'
                )
            out += [
                "# HELP endpointkit_grpc_request_duration_seconds gRPC call latency by method.",
                "# TYPE endpointkit_grpc_request_duration_seconds histogram",
            ]
            for method, hist in sorted(self.grpc_latency.items()):
                out += hist.render(
                    "endpointkit_grpc_request_duration_seconds", f'{b},method="{_escape(method)}"'
                )
        out += [
            "# HELP endpointkit_batch_size Instances per predict call.",
            "# TYPE endpointkit_batch_size histogram",
        ]
        out += self.batch_sizes.render("endpointkit_batch_size", b)
        out += [
            "# HELP endpointkit_in_flight Requests being processed.",
            "# TYPE endpointkit_in_flight gauge",
            f"endpointkit_in_flight{{{b}}} {self.in_flight}",
            "# HELP endpointkit_model_ready 1 once the model is loaded.",
            "# TYPE endpointkit_model_ready gauge",
            f"endpointkit_model_ready{{{b}}} {int(self.ready)}",
            "# HELP endpointkit_predict_inline 1 when predict runs on the event loop.",
            "# TYPE endpointkit_predict_inline gauge",
            f"endpointkit_predict_inline{{{b}}} {int(self.predict_inline)}",
        ]
        return ("\n".join(out) + "\n").encode()
