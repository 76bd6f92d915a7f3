"""Size-capped logs for the local backend: the gateway's and every version's.

Each process writes its own log file directly (opened with O_APPEND, so nothing sits between
a crashing model and its last lines). The daemon's sweep rotates them the way logrotate's
`copytruncate` does: past `max_bytes`, the file is copied to `NAME.1` (older copies shift to
`.2` ... `.backups`, the oldest dropped) and truncated in place; the writer's next append lands
at the new end. Lines written between the copy and the truncation are lost, a window of
microseconds once per `max_bytes`; the writers never need to reopen anything.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["DEFAULT_BACKUPS", "DEFAULT_MAX_BYTES", "rotate_logs"]

#: Rotate a log past this size (ENDPOINTKIT_LOG_MAX_BYTES), keeping this many old copies
#: (ENDPOINTKIT_LOG_BACKUPS): at most (1 + backups) x max_bytes per log on disk.
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_BACKUPS = 3


def limits_from_env(env: dict[str, str] | None = None) -> tuple[int, int]:
    """(max_bytes, backups) from the environment, defaults where unset."""
    source = os.environ if env is None else env
    max_bytes = int(source.get("ENDPOINTKIT_LOG_MAX_BYTES") or DEFAULT_MAX_BYTES)
    backups = int(source.get("ENDPOINTKIT_LOG_BACKUPS") or DEFAULT_BACKUPS)
    if max_bytes < 1024 or backups < 1:
        raise ValueError(
            "ENDPOINTKIT_LOG_MAX_BYTES must be at least 1024 and ENDPOINTKIT_LOG_BACKUPS at "
            f"least 1 (got {max_bytes} and {backups})"
        )
    return max_bytes, backups


def rotate_logs(folder: Path, max_bytes: int, backups: int) -> list[Path]:
    """Rotate every `*.log` under `folder` that is over `max_bytes`; returns those rotated."""
    rotated = []
    for log in sorted(folder.rglob("*.log")):
        try:
            if log.stat().st_size <= max_bytes:
                continue
            for index in range(backups - 1, 0, -1):
                older = log.with_name(f"{log.name}.{index}")
                if older.exists():
                    older.replace(log.with_name(f"{log.name}.{index + 1}"))
            shutil.copyfile(log, log.with_name(f"{log.name}.1"))
            os.truncate(log, 0)
        except OSError:
            continue  # removed under us (an undeploy) or unreadable: the next sweep sees it
        rotated.append(log)
    return rotated
