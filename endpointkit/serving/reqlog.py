"""JSON-lines logs: one cheap path for request lines and server events (not uvicorn's logger).

Levels for request lines: ``all``; ``sampled`` (errors plus a random share, the default);
``errors`` (status >= 400); ``off``. Lines are buffered and flushed at most every 0.5 s, at once
for server errors and events, and at shutdown. Bodies are never logged, only sizes.

Tracebacks are collapsed: the first of a kind (exception type plus the frames it passed
through) is logged in full with a ``traceback_id``; repeats within ``TRACEBACK_WINDOW_S`` log
the error line, that id and a ``repeat`` count (~0.3 KB instead of ~3 KB a failure).
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
import traceback
from typing import Any, BinaryIO

import orjson

FLUSH_EVERY_S = 0.5
TRACEBACK_WINDOW_S = 300.0
_MAX_KINDS = 1024


class RequestLog:
    """Writes request lines and events to ``stream`` (default: stderr's bytes)."""

    def __init__(
        self,
        level: str,
        sample_rate: float,
        version: str | None,
        stream: BinaryIO | None = None,
    ) -> None:
        self.level = level
        self.sample_rate = sample_rate
        self.version = version
        self.stream: BinaryIO = stream if stream is not None else sys.stderr.buffer
        self._random = random.random
        self._last_flush = time.monotonic()
        self._seen: dict[int, tuple[float, int]] = {}  # traceback kind -> (first logged, repeats)

    def wants(self, status: int) -> bool:
        """Whether a request with ``status`` gets a line at this level."""
        level = self.level
        if level == "off":
            return False
        if level == "all" or status >= 400:
            return True
        return level == "sampled" and self._random() < self.sample_rate

    def sampled(self) -> bool:
        """One random draw at the sample rate."""
        return self._random() < self.sample_rate

    def request(
        self,
        request_id: str,
        method: str,
        path: str,
        status: int,
        seconds: float,
        size_in: int,
        size_out: int,
        code: str | None = None,
    ) -> None:
        """Log one request line if the level wants it."""
        if self.wants(status):
            self.write_request(request_id, method, path, status, seconds, size_in, size_out, code)

    def write_request(
        self,
        request_id: str,
        method: str,
        path: str,
        status: int,
        seconds: float,
        size_in: int,
        size_out: int,
        code: str | None = None,
    ) -> None:
        """Log one request line (the caller already decided it is wanted)."""
        line: dict[str, Any] = {
            "ts": time.time(),
            "level": "error" if status >= 500 else "info",
            "event": "request",
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "latency_ms": round(seconds * 1000.0, 3),
            "bytes_in": size_in,
            "bytes_out": size_out,
        }
        if code is not None:
            line["code"] = code
        if self.version is not None:
            line["version"] = self.version
        self._write(line, flush=status >= 500)

    def event(
        self, level: str, message: str, *, exc: BaseException | None = None, **fields: Any
    ) -> None:
        """Log a server event (startup, model load, predictor crash with traceback)."""
        line: dict[str, Any] = {"ts": time.time(), "level": level, "event": message, **fields}
        if self.version is not None:
            line["version"] = self.version
        if exc is not None:
            line["error"] = f"{type(exc).__name__}: {exc}"
            self._traceback(line, exc)
        self._write(line, flush=True)

    def _traceback(self, line: dict[str, Any], exc: BaseException) -> None:
        """Add the full traceback, or only its id and repeat count when seen recently."""
        frames = traceback.extract_tb(exc.__traceback__)
        kind = hash((type(exc).__qualname__, *((f.filename, f.lineno) for f in frames)))
        line["traceback_id"] = f"{kind & 0xFFFFFFFF:08x}"
        now = time.monotonic()
        seen = self._seen.get(kind)
        if seen is not None and now - seen[0] < TRACEBACK_WINDOW_S:
            self._seen[kind] = (seen[0], seen[1] + 1)
            line["repeat"] = seen[1] + 1
            return
        if len(self._seen) >= _MAX_KINDS:
            self._seen.clear()
        self._seen[kind] = (now, 0)
        line["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    def _write(self, line: dict[str, Any], flush: bool) -> None:
        try:
            self.stream.write(orjson.dumps(line, default=str) + b"\n")
            now = time.monotonic()
            if flush or now - self._last_flush > FLUSH_EVERY_S:
                self.stream.flush()
                self._last_flush = now
        except (OSError, ValueError):  # closed or broken stream: never fail a request over a log
            pass

    def flush(self) -> None:
        """Flush buffered lines."""
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()
