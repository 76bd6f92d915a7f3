"""Memory that large request bodies held goes back to the system once they are answered.

glibc serves a block of 128 KiB or more with its own mmap and unmaps it on free, but each such
free raises that threshold to the freed size (up to 32 MiB): after the first large body, bodies
up to that size come from the heap, where one small block allocated later pins the pages below
it. Measured with the hostile scenario (`python -m benchmarks faults --only hostile`: 30,000
generated requests, bodies up to 6 MB, 64 at a time, one server process): RSS +37 to +40 MB
over the first pass.

Two ways out, both measured:

- fixing the threshold at 128 KiB (``mallopt``): +6.1 MB, but every allocation of 128 KiB or
  more then pays an mmap, a munmap and page faults, inside ``predict`` too: a numpy model with
  1 MiB intermediates took 7.9 ms a call instead of 7.6 (4 % slower);
- ``malloc_trim(0)`` after large bodies, at most once a second (``HeapTrimmer``): it hands the
  free pages back, in the middle of the heap too, and leaves the allocation policy alone.

This module does the second. A no-op where the C library is not glibc.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
from typing import Any

#: A body at least this large schedules a trim once it is answered (glibc's initial mmap
#: threshold: smaller bodies never leave large holes).
TRIM_AFTER_BYTES = 128 * 1024
#: Trims are at least this far apart, however many large bodies come.
TRIM_EVERY_S = 1.0

_malloc_trim: Any = None


def trim_heap() -> bool:
    """glibc's ``malloc_trim(0)``: free heap pages go back to the OS; whether it ran."""
    global _malloc_trim
    if _malloc_trim is None:
        _malloc_trim = False
        try:
            if os.confstr("CS_GNU_LIBC_VERSION"):
                _malloc_trim = ctypes.CDLL(None).malloc_trim  # this process's glibc
        except (ValueError, OSError, AttributeError):  # not glibc
            pass
    if not _malloc_trim:
        return False
    _malloc_trim(0)
    return True


class HeapTrimmer:
    """Trims the heap ``every_s`` after a large body was answered (once per window)."""

    def __init__(self, every_s: float = TRIM_EVERY_S) -> None:
        self.every_s = every_s
        self.trims = 0
        self._pending: asyncio.TimerHandle | None = None

    def large_body_answered(self) -> None:
        """On the loop, once a large body (``TRIM_AFTER_BYTES`` or more) is no longer needed."""
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(self.every_s, self._trim)

    def _trim(self) -> None:
        self._pending = None
        if trim_heap():
            self.trims += 1

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
