"""A folder of request files as a queue, and a folder as the place results go (`file://DIR`).

A folder queue is for offline and local use: drop one request per file into DIR (write it
under a name starting with '.' or ending in '.tmp', then rename it, so a half-written file is
never read) and run `endpointkit consume --queue file://DIR`. The file's name is the message
id and its extension gives the content type (.json, .csv, .npy, .jsonl; anything else is sent
as application/octet-stream).

A consumer holds a message by an exclusive `flock` on its file, so several consumers (and
threads) share one folder, and a consumer that dies releases its messages with its process:
no visibility timeout is needed, and `extend` does nothing. How often a file was delivered,
and when a failed one may be tried again, is kept in `DIR/.endpointkit/<name>.json`.
POSIX only (fcntl).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from endpointkit.consume._core import Message
from endpointkit.errors import ValidationError
from endpointkit.invocation import CSV, JSON, JSON_LINES, NPY, OCTET_STREAM, InvokeResult

__all__ = ["FolderSink", "FolderSource"]

_TYPES = {".json": JSON, ".csv": CSV, ".npy": NPY, ".jsonl": JSON_LINES}
_STATE = ".endpointkit"
POLL_S = 0.2


def _folder(location: str, what: str) -> Path:
    path = Path(location.removeprefix("file://"))
    if not location.removeprefix("file://"):
        raise ValidationError(f"{location!r} names no folder for {what}; use file://DIR.")
    return path


class FolderSource:
    """Request files in a folder, oldest first."""

    def __init__(self, location: str) -> None:
        self.root = _folder(location, "the queue")
        if not self.root.is_dir():
            raise ValidationError(
                f"the queue folder {str(self.root)!r} does not exist.",
                hint="Create it and put one request per file in it.",
            )
        self.state = self.root / _STATE
        self.state.mkdir(exist_ok=True)
        self.description = f"file://{self.root}"

    def receive(self, max_messages: int, wait_s: float, visibility_s: float) -> list[Message]:
        deadline = time.monotonic() + wait_s
        while True:
            taken: list[Message] = []
            for path in self._candidates():
                message = self._claim(path)
                if message is not None:
                    taken.append(message)
                    if len(taken) >= max_messages:
                        break
            if taken or time.monotonic() >= deadline:
                return taken
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))

    def _candidates(self) -> list[Path]:
        found = []
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.name.startswith(".") or entry.name.endswith(".tmp"):
                    continue
                with contextlib.suppress(OSError):
                    if entry.is_file():
                        found.append((entry.stat().st_mtime, entry.name))
        return [self.root / name for _, name in sorted(found)]

    def _claim(self, path: Path) -> Message | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None  # taken and deleted by another consumer meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise OSError("replaced")  # deleted (and maybe re-created) since we opened it
            state = self._state(path.name)
            if state.get("not_before", 0.0) > time.time():
                raise OSError("backing off")
            state["receives"] = int(state.get("receives", 0)) + 1
            self._save(path.name, state)
            with os.fdopen(os.dup(fd), "rb") as handle:
                body = handle.read()
        except OSError:
            os.close(fd)  # closing drops the lock
            return None
        content_type = _TYPES.get(path.suffix.lower(), OCTET_STREAM)
        return Message(
            id=path.name,
            body=body,
            attributes={"ContentType": content_type},
            receive_count=state["receives"],
            handle=fd,
        )

    def _state(self, name: str) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = orjson.loads((self.state / f"{name}.json").read_bytes())
        except (OSError, ValueError):
            return {}
        return loaded

    def _save(self, name: str, state: Mapping[str, Any]) -> None:
        _write_atomic(self.state / f"{name}.json", orjson.dumps(dict(state)))

    def extend(self, messages: Sequence[Message], visibility_s: float) -> None:
        pass  # the lock lasts as long as the process holds the file open

    def release(self, message: Message, delay_s: float) -> None:
        if delay_s > 0:
            state = self._state(message.id)
            state["not_before"] = time.time() + delay_s
            self._save(message.id, state)
        os.close(message.handle)

    def delete(self, message: Message) -> None:
        try:
            (self.root / message.id).unlink(missing_ok=True)
            (self.state / f"{message.id}.json").unlink(missing_ok=True)
        finally:
            os.close(message.handle)

    def close(self) -> None:
        pass  # messages are closed one by one


class FolderSink:
    """Results in a folder: `<key>.out` (the answer's bytes) and `<key>.error` (JSON), each
    written to a temporary file, flushed to disk and renamed into place."""

    def __init__(self, location: str) -> None:
        self.root = _folder(location, "results")
        self.root.mkdir(parents=True, exist_ok=True)
        self.description = f"file://{self.root}"

    def stored(self, key: str) -> str | None:
        for suffix in (".out", ".error"):
            path = self.root / f"{key}{suffix}"
            if path.exists():
                return f"file://{path}"
        return None

    def write_result(self, key: str, result: InvokeResult, message: Message) -> str:
        path = self.root / f"{key}.out"
        _write_atomic(path, result.body)
        return f"file://{path}"

    def write_error(self, key: str, error: Mapping[str, Any], message: Message) -> str:
        path = self.root / f"{key}.error"
        _write_atomic(path, orjson.dumps(dict(error), default=str))
        return f"file://{path}"

    def close(self) -> None:
        pass  # nothing held open


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to `.<name>.<pid>.tmp`, fsync, then rename over `path`: readers see the whole
    file or none, and it survives a crash once this returns."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
