"""What the mock remembers: every invocation (a Call, shadow copies included) and each
endpoint's history of changes (endpointkit.state.Event)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from endpointkit.adapters.mock._state import now
from endpointkit.invocation import JSON, InvokeRequest, decode
from endpointkit.spec import TrafficSplit
from endpointkit.state import Event


@dataclass(frozen=True)
class Call:
    """One recorded invocation (shadow copies are recorded with shadow=True)."""

    endpoint: str
    version: str | None
    body: bytes
    content_type: str
    accept: str | None
    custom_attributes: str | None
    target_version: str | None
    shadow: bool = False
    status: int = 200
    response: bytes = b""
    error: str | None = None
    time: float = field(default_factory=time.time)

    def json(self) -> Any:
        """The request body decoded as JSON."""
        return decode(self.body, JSON)


def call_of(
    request: InvokeRequest,
    version: str,
    status: int,
    *,
    shadow: bool,
    response: bytes = b"",
    error: str | None = None,
) -> Call:
    """The record of `request`, answered by `version` with `status`."""
    return Call(
        request.endpoint,
        version,
        request.body,
        request.content_type,
        request.accept,
        request.custom_attributes,
        request.version,
        shadow=shadow,
        status=status,
        response=response,
        error=error,
    )


def calls_to(calls: Sequence[Call], endpoint: str, shadow: bool | None) -> list[Call]:
    """The calls to `endpoint`: live ones (shadow=False), shadow copies (True) or all (None)."""
    return [c for c in calls if c.endpoint == endpoint and (shadow is None or c.shadow is shadow)]


def served_counts(calls: Sequence[Call]) -> dict[str, int]:
    """How many of `calls` each version answered."""
    counts: dict[str, int] = {}
    for call in calls:
        if call.version is not None:
            counts[call.version] = counts.get(call.version, 0) + 1
    return counts


def event(
    name: str,
    kind: Any,
    *,
    version: str | None = None,
    message: str = "",
    before: TrafficSplit | None = None,
    after: TrafficSplit | None = None,
) -> Event:
    """One entry in the history of endpoint `name`."""
    return Event(
        time=now(),
        endpoint=name,
        kind=kind,
        version=version,
        message=message,
        traffic_before=dict(before.root) if before is not None else None,
        traffic_after=dict(after.root) if after is not None else None,
    )
