"""Artifacts from ``s3://`` or ``gs://`` (and a packed ``SAGEMAKER_SUBMIT_DIRECTORY``)
fetched once per server, before its workers start, and removed when it exits.

Left to the workers, each one downloaded (and unpacked) its own copy into a new temporary
folder, again whenever a worker was replaced, and none was ever removed: 73 such folders had
piled up in /tmp on the development machine. The server process fetches here, points
``ENDPOINTKIT_MODEL_DIR`` / ``SAGEMAKER_SUBMIT_DIRECTORY`` at the local copies (workers read
their settings from the environment they inherit) and removes the copies once it returns.
A fetch that fails here is left to the workers, which fail the same way and answer
``/ping`` with the reason (503 ``model_load_failed``), as without this step. The port is
bound after the download: health checks meanwhile are refused rather than answered 503,
which SageMaker and Vertex AI both count as not ready yet. SIGTERM during the download
removes what was fetched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .reqlog import RequestLog
from .settings import Settings

REMOTE = ("s3://", "gs://")


@contextlib.contextmanager
def fetched_once(settings: Settings) -> Iterator[Settings]:
    """``settings`` with remote artifacts replaced by local copies while the block runs."""
    created: list[Path] = []
    changes: dict[str, str] = {}
    log = RequestLog(settings.request_log, settings.log_sample_rate, settings.version)
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)  # the finally below cleans up
    try:
        if settings.model_dir.startswith(REMOTE):
            local = _fetch("model", settings.model_dir, settings, log)
            if local is not None:
                created.append(Path(local))
                changes["ENDPOINTKIT_MODEL_DIR"] = local
        submit = settings.env.get("SAGEMAKER_SUBMIT_DIRECTORY") or ""
        if submit and not Path(submit.removeprefix("file://")).is_dir():
            local = _fetch("code", submit, settings, log)
            if local is not None:
                created.append(Path(local))
                changes["SAGEMAKER_SUBMIT_DIRECTORY"] = local
        signal.signal(signal.SIGTERM, previous)  # the server installs its own
        os.environ.update(changes)
        env = {**settings.env, **changes}
        model_dir = changes.get("ENDPOINTKIT_MODEL_DIR", settings.model_dir)
        yield dataclasses.replace(settings, model_dir=model_dir, env=env)
    finally:
        signal.signal(signal.SIGTERM, previous)
        for folder in created:
            shutil.rmtree(folder, ignore_errors=True)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    sys.exit(128 + signum)


def _fetch(what: str, uri: str, settings: Settings, log: RequestLog) -> str | None:
    """The local folder for ``uri``, or None (with a log line) when it cannot be fetched."""
    from .predictor import fetch_artifacts
    from .settings import ArchiveLimits

    started = time.monotonic()
    try:
        if what == "model":
            local = fetch_artifacts(uri, settings.env)
        else:
            from .handlers.fetch import fetch_code

            local = fetch_code(uri, ArchiveLimits.from_env(settings.env))
    except Exception as exc:  # the workers retry and report it where the platform looks
        log.event(
            "warning", f"{what}_prefetch_failed", uri=uri, error=f"{type(exc).__name__}: {exc}"
        )
        return None
    seconds = round(time.monotonic() - started, 3)
    log.event("info", f"{what}_fetched", uri=uri, folder=local, seconds=seconds)
    return local
