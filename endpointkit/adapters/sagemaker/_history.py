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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from endpointkit.state import Event

__all__ = ["HistoryDoc", "Pending"]


@dataclass
class Pending:
    """An operation SageMaker is still carrying out: a new config is being rolled out."""

    kind: str  # "create" | "deploy" | "undeploy" | "shadow" | "scale"
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

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": 1,
                "endpoint": self.endpoint,
                "events": [e.model_dump(mode="json") for e in self.events],
                "pending": [p.to_json() for p in self.pending],
            },
            indent=1,
        ).encode()

    @classmethod
    def from_bytes(cls, endpoint: str, data: bytes, etag: str | None) -> HistoryDoc:
        raw = json.loads(data)
        return cls(
            endpoint=endpoint,
            events=[Event.model_validate(e) for e in raw.get("events", [])],
            pending=[Pending.from_json(p) for p in raw.get("pending", [])],
            etag=etag,
        )


#: Reads (document or None, etag); writes (document, etag-or-None) -> raises Conflict on a race.
Reader = Callable[[], "HistoryDoc | None"]
Writer = Callable[["HistoryDoc"], None]
