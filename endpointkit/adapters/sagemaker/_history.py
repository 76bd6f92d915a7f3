"""An endpoint's history as one JSON document in S3, written with conditional puts.

SageMaker keeps no history of an endpoint. endpointkit keeps it at
`s3://<artifact bucket>/<prefix>/<endpoint>/history.json` (the endpoint's
`endpointkit:history` tag points there): the events, oldest first, and the operations that
were started but whose outcome has not been seen yet (`pending`). Each write is conditional on
the ETag that was read (If-Match, or If-None-Match for the first), so two processes changing
the same endpoint never lose each other's events; the document outlives the endpoint, as an
audit log.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from endpointkit.adapters.sagemaker._errors import BACKEND
from endpointkit.errors import Conflict, NotFound
from endpointkit.state import Event

if TYPE_CHECKING:
    from endpointkit.adapters.sagemaker._artifacts import ArtifactBucket
    from endpointkit.adapters.sagemaker._client import Aws

__all__ = ["History", "HistoryDoc", "Pending"]

#: The event a pending operation records once it went live.
_DONE = {
    "create": "deployed",
    "deploy": "deployed",
    "undeploy": "undeployed",
    "shadow": "shadow",
    "scale": "scaled",
    "rollout": "deployed",
}


#: Write ids kept in the document: more than writers can race in one update's retries.
_WRITES_KEPT = 32


@dataclass
class Pending:
    """An operation SageMaker is still carrying out: a new config is being rolled out."""

    kind: str  # "create" | "deploy" | "undeploy" | "shadow" | "scale" | "rollout" (native)
    config: str
    version: str | None = None
    message: str = ""
    before: dict[str, int] | None = None
    after: dict[str, int] | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "config": self.config,
            "version": self.version,
            "message": self.message,
            "before": self.before,
            "after": self.after,
            "data": self.data,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pending:
        return cls(
            kind=str(data["kind"]),
            config=str(data["config"]),
            version=data.get("version"),
            message=str(data.get("message", "")),
            before=data.get("before"),
            after=data.get("after"),
            data=dict(data.get("data") or {}),
        )


@dataclass
class HistoryDoc:
    """The document as read: events, pending operations, and the ETag it was read at."""

    endpoint: str
    events: list[Event] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    etag: str | None = None
    #: The ids of the latest writes (`History.update`), so a write whose answer was lost is
    #: recognised instead of applied twice.
    writes: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": 1,
                "endpoint": self.endpoint,
                "events": [e.model_dump(mode="json") for e in self.events],
                "pending": [p.to_json() for p in self.pending],
                "writes": self.writes[-_WRITES_KEPT:],
            },
            indent=1,
        ).encode()

    def append(
        self,
        kind: Any,
        *,
        version: str | None = None,
        message: str = "",
        before: dict[str, int] | None = None,
        after: dict[str, int] | None = None,
    ) -> None:
        """Add an event stamped now (never before the last one, so the log stays sorted)."""
        now = datetime.now(timezone.utc)
        if self.events and self.events[-1].time > now:
            now = self.events[-1].time  # keep the log sorted even if clocks disagree
        self.events.append(
            Event(
                time=now,
                endpoint=self.endpoint,
                kind=kind,
                version=version,
                message=message,
                traffic_before=before,
                traffic_after=after,
            )
        )

    def settle(
        self, live_config: str, raw_status: str, traffic: Mapping[str, int], reason: str
    ) -> list[tuple[Pending, bool]]:
        """Record the outcome of every pending operation, now that the endpoint settled in
        `raw_status` on `live_config`; returns each with whether it succeeded."""
        outcomes: list[tuple[Pending, bool]] = []
        for pending in self.pending:
            ok = pending.config == live_config and raw_status == "InService"
            outcomes.append((pending, ok))
            if ok:
                after = pending.after if pending.kind in ("shadow", "scale") else traffic
                self.append(
                    _DONE[pending.kind],
                    version=pending.version,
                    message=pending.message,
                    before=pending.before,
                    after=dict(after) if after is not None else None,
                )
            elif pending.kind == "rollout":
                # SageMaker rolled the native rollout back: the old version serves again.
                self.append(
                    "failed",
                    version=pending.version,
                    message=f"native rollout of {pending.version} was rolled back by "
                    f"SageMaker: {reason}",
                )
            else:
                self.append(
                    "failed",
                    version=pending.version,
                    message=f"{pending.kind} of {pending.version or 'the endpoint'} "
                    f"failed: {reason}",
                )
        self.pending = []
        return outcomes

    @classmethod
    def from_bytes(cls, endpoint: str, data: bytes, etag: str | None) -> HistoryDoc:
        raw = json.loads(data)
        return cls(
            endpoint=endpoint,
            events=[Event.model_validate(e) for e in raw.get("events", [])],
            pending=[Pending.from_json(p) for p in raw.get("pending", [])],
            etag=etag,
            writes=[str(w) for w in raw.get("writes", [])],
        )


class History:
    """Reads and writes the history documents in the artifact bucket."""

    def __init__(self, aws: Aws, bucket: ArtifactBucket) -> None:
        self._aws = aws
        self._bucket = bucket

    def _key(self, name: str) -> str:
        return self._bucket.key(name, "history.json")

    def uri(self, name: str) -> str:
        return f"s3://{self._bucket.get()}/{self._key(name)}"

    def read(self, name: str) -> HistoryDoc | None:
        """The document, or None if there is none (or no bucket yet)."""
        bucket = self._bucket.existing()
        if bucket is None:
            return None
        try:
            response = self._aws.call(
                "s3",
                "get_object",
                operation="history",
                endpoint=name,
                what=f"history of {name!r}",
                Bucket=bucket,
                Key=self._key(name),
            )
        except NotFound:
            return None
        data = response["Body"].read()
        return HistoryDoc.from_bytes(name, data, response.get("ETag"))

    def update(self, name: str, mutate: Callable[[HistoryDoc], None]) -> HistoryDoc:
        """Read-modify-write the history with a conditional put; retried on a lost race.

        Each update carries an id into the document: if a put went through but its answer was
        lost (its retry then fails If-Match), the next read finds the id and stops there
        instead of applying `mutate` a second time.
        """
        bucket = self._bucket.get()
        write = uuid.uuid4().hex
        for _ in range(8):
            doc = self.read(name) or HistoryDoc(endpoint=name)
            if write in doc.writes:
                return doc  # our put went through; only its answer was lost
            mutate(doc)
            doc.writes = [*doc.writes, write][-_WRITES_KEPT:]
            condition: dict[str, Any] = {"IfMatch": doc.etag} if doc.etag else {"IfNoneMatch": "*"}
            try:
                self._aws.call(
                    "s3",
                    "put_object",
                    operation="history",
                    endpoint=name,
                    what=f"history of {name!r}",
                    Bucket=bucket,
                    Key=self._key(name),
                    Body=doc.to_bytes(),
                    ContentType="application/json",
                    **condition,
                )
            except Conflict:
                continue  # another writer got there first: read again and re-apply
            return doc
        raise Conflict(
            f"could not record the history of {name!r}: it kept changing under us.",
            backend=BACKEND,
            operation="history",
            endpoint=name,
        )
