"""Helpers for streaming tests: reassemble server-sent events and JSON lines from chunks (frames
may split across chunks, or share one) and record when each frame was complete, to prove that
frames arrive while the stream is still running."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any


def timed_frames(chunks: Iterable[bytes], *, sse: bool = True) -> list[tuple[float, Any]]:
    """(monotonic time the frame was complete, its decoded JSON) for every frame in the stream.

    SSE frames end with a blank line and carry `data:` lines; JSON lines end with a newline.
    Reads `chunks` to the end.
    """
    frames: list[tuple[float, Any]] = []
    buffer = b""
    end = b"\n\n" if sse else b"\n"
    for chunk in chunks:
        buffer += chunk
        now = time.monotonic()
        while end in buffer:
            frame, buffer = buffer.split(end, 1)
            if not frame.strip():
                continue
            frames.append((now, _decode(frame, sse)))
    assert not buffer.strip(), f"the stream ended inside a frame: {buffer!r}"
    return frames


def _decode(frame: bytes, sse: bool) -> Any:
    if not sse:
        return json.loads(frame)
    data = [line[5:].lstrip() for line in frame.split(b"\n") if line.startswith(b"data:")]
    return json.loads(b"\n".join(data))


def assert_streamed(times: list[float], gap_s: float) -> None:
    """Frames produced `gap_s` apart arrived spread out, not all at the end: the last arrived
    well after the first (half the production time, to tolerate a busy machine)."""
    assert len(times) >= 3, times
    spread = times[-1] - times[0]
    assert spread >= 0.5 * gap_s * (len(times) - 1), f"frames arrived together: {times}"


def body(instances: list[Any], **parameters: Any) -> bytes:
    """The `{"instances", "parameters"}` request body."""
    payload: dict[str, Any] = {"instances": instances}
    if parameters:
        payload["parameters"] = parameters
    return json.dumps(payload).encode()
