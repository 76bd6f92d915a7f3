"""Cloud Storage through google-cloud-storage: staged model directories and endpoint history.

A local model directory (or file:// URI) is uploaded under the staging bucket before its
Model version is uploaded, as the Vertex SDK does; gs:// URIs are used as they are.

History lives in one JSON-lines object per endpoint
(`<prefix>endpointkit/history/<project>/<location>/<endpoint>.jsonl`), appended with a
generation-match precondition (optimistic concurrency). Vertex has no history API, endpoint
labels hold 64 short values, and Model Registry entries disappear with the endpoint; a GCS
object is durable, unbounded, survives `delete`, and is found from the endpoint name alone.
Without a staging bucket there is no history object: `history` is derived from the endpoint.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from endpointkit.adapters.vertex._clients import Connection
from endpointkit.adapters.vertex._errors import BACKEND, STORAGE
from endpointkit.errors import Conflict, NotFound, ValidationError
from endpointkit.spec import TrafficSplit, VersionSpec
from endpointkit.state import Event

__all__ = ["Storage", "parse_bucket"]

OCTETS = "application/octet-stream"


class Storage:
    """The staging bucket (`gs://bucket[/prefix]`), or None: no staging and no history."""

    def __init__(self, conn: Connection, staging_bucket: str | None) -> None:
        self._conn = conn
        self.bucket: str | None = None
        self._prefix = ""
        if staging_bucket:
            self.bucket, self._prefix = parse_bucket(staging_bucket)

    def _staging_prefix(self, name: str) -> str:
        conn = self._conn
        return f"{self._prefix}endpointkit/artifacts/{conn.project}/{conn.location}/{name}/"

    def _history_object(self, name: str) -> str:
        conn = self._conn
        return f"{self._prefix}endpointkit/history/{conn.project}/{conn.location}/{name}.jsonl"

    # -- staged artifacts ---------------------------------------------------------------------

    def stage(self, name: str, version: VersionSpec) -> str:
        """The gs:// artifact URI for `version`, uploading a local model directory first."""
        model = version.model
        if model is None:
            return ""
        if model.startswith("gs://"):
            return model
        context = {"backend": BACKEND, "endpoint": name, "version": version.name}
        if model.startswith("s3://"):
            raise ValidationError(
                f"version {version.name!r}: Vertex AI cannot read artifacts from {model!r}.",
                hint="Copy the model to gs:// (or give a local directory and staging_bucket).",
                **context,
            )
        local = Path(model.removeprefix("file://"))
        if not local.is_dir():
            raise ValidationError(
                f"version {version.name!r}: model directory {str(local)!r} does not exist.",
                **context,
            )
        if self.bucket is None:
            raise ValidationError(
                f"version {version.name!r} has a local model directory, which Vertex AI can only "
                "read after it is uploaded to Cloud Storage.",
                hint="Set staging_bucket=gs://BUCKET[/prefix] (--set staging_bucket=...).",
                **context,
            )
        prefix = f"{self._staging_prefix(name)}{version.name}-{version.spec_hash}/"
        for path in sorted(local.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                relative = path.relative_to(local).as_posix()
                self._upload(prefix + relative, path.read_bytes(), "deploy", name)
        return f"gs://{self.bucket}/{prefix}".rstrip("/")

    def delete_staged(self, name: str, version: VersionSpec | None) -> None:
        """Delete what `stage` uploaded for `version` (None: for every version of `name`)."""
        if self.bucket is None:
            return
        prefix = self._staging_prefix(name)
        if version is not None:
            prefix += f"{version.name}-{version.spec_hash}/"
        storage, bucket = self._conn.storage(), self.bucket
        timeout = self._conn.call_timeout_s

        def names() -> list[str]:
            blobs = storage.list_blobs(bucket, prefix=prefix, retry=None, timeout=timeout)
            return [blob.name for blob in blobs]

        for obj in self._call("delete", names, name):
            with contextlib.suppress(NotFound):
                self._call(
                    "delete",
                    lambda obj=obj: storage.bucket(bucket).delete_blob(
                        obj, retry=None, timeout=timeout
                    ),
                    name,
                )

    # -- history ------------------------------------------------------------------------------

    def read_history(self, name: str) -> tuple[list[Event], int] | None:
        """The endpoint's events and the history object's generation; None if it has none."""
        found = self._read(self._history_object(name), name)
        if found is None:
            return None
        data, generation = found
        events = [Event.model_validate_json(line) for line in data.splitlines() if line.strip()]
        return events, generation

    def record(
        self,
        name: str,
        kind: Any,  # Event.kind
        *,
        version: str | None = None,
        message: str = "",
        before: TrafficSplit | None = None,
        after: TrafficSplit | None = None,
        fresh: bool = False,
    ) -> None:
        """Append one event to the endpoint's history object (a no-op without a bucket);
        `fresh` starts the history over (a new endpoint of an old name)."""
        if self.bucket is None:
            return
        event = Event(
            time=datetime.now(timezone.utc),
            endpoint=name,
            kind=kind,
            version=version,
            message=message,
            traffic_before=dict(before.root) if before is not None else None,
            traffic_after=dict(after.root) if after is not None else None,
        )
        line = event.model_dump_json().encode() + b"\n"
        obj = self._history_object(name)
        for _ in range(10):  # optimistic concurrency on the object's generation
            current = self._read(obj, name)
            generation = current[1] if current else 0
            data = line if fresh or current is None else current[0] + line
            if self._upload(obj, data, "history", name, if_generation=generation):
                return
        raise Conflict(
            f"could not append to the history of {name!r}: it kept changing.",
            backend=BACKEND,
            operation="history",
            endpoint=name,
        )

    # -- objects ------------------------------------------------------------------------------

    def _call(self, operation: str, fn: Any, endpoint: str) -> Any:
        return self._conn.call(operation, fn, endpoint=endpoint, service=STORAGE)

    def _upload(
        self,
        obj: str,
        data: bytes,
        operation: str,
        endpoint: str,
        *,
        if_generation: int | None = None,
    ) -> bool:
        """Write `obj`; False if `if_generation` no longer matches (0: it must not exist)."""
        from google.api_core.exceptions import PreconditionFailed

        blob = self._conn.storage().bucket(self.bucket).blob(obj)

        def upload() -> bool:
            try:
                blob.upload_from_string(
                    data,
                    content_type=OCTETS,
                    if_generation_match=if_generation,
                    retry=None,  # endpointkit's control-plane policy retries
                    timeout=self._conn.call_timeout_s,
                )
            except PreconditionFailed:
                return False
            return True

        return bool(self._call(operation, upload, endpoint))

    def _read(self, obj: str, endpoint: str) -> tuple[bytes, int] | None:
        blob = self._conn.storage().bucket(self.bucket).blob(obj)

        def download() -> bytes:
            data: bytes = blob.download_as_bytes(retry=None, timeout=self._conn.call_timeout_s)
            return data

        try:
            data = self._call("history", download, endpoint)
        except NotFound:
            return None
        return data, int(blob.generation or 0)


def parse_bucket(value: str) -> tuple[str, str]:
    """gs://bucket/prefix -> ("bucket", "prefix/")."""
    rest = value.removeprefix("gs://").strip("/")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValidationError(f"staging_bucket {value!r} must look like gs://BUCKET[/prefix].")
    return bucket, f"{prefix}/" if prefix else ""
