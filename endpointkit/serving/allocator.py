"""A fixed mmap threshold for glibc's malloc, so memory held by large request bodies goes back
to the system once they are answered.

glibc serves a block of 128 KiB or more with its own mmap and unmaps it on free, but each such
free raises the threshold to the freed size (up to 32 MiB): after the first large body, bodies
up to that size come from the heap, where one small block allocated later pins everything below
it. Measured with the hostile scenario (`python -m benchmarks faults --only hostile`, 30,000
generated requests, bodies up to 6 MB, 64 at a time, one server process): RSS +37 to +40 MB
over the first pass with the moving threshold, +5.8 MB with the threshold fixed at 128 KiB.
Setting the threshold explicitly also stops it moving. The cost is an mmap and munmap per
body over 128 KiB (page faults, microseconds against the milliseconds such a body takes to
parse); bodies under it are untouched.

``MALLOC_MMAP_THRESHOLD_`` in the environment wins (glibc read it at start-up); other C
libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import os

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, kept from now on


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold for this process; whether it was set here."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or not _glibc():
        return False
    try:
        libc = ctypes.CDLL(None)  # this process's symbols, glibc's among them
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError):  # not a glibc system
        return False
