"""What an endpoint is, as a backend reports it: status, versions, split, shadow, history.

The desired side (specs) is in `endpointkit.spec`; backends return these models from `get`
and `history`, normalised across providers with the raw provider strings kept beside them.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from endpointkit.spec import Scaling, Shadow, VersionSpec
from endpointkit.traffic import TrafficSplit

__all__ = ["EndpointState", "Event", "History", "Status", "VersionState"]


class Status(str, Enum):
    """Endpoint status, normalized across providers; the raw string is kept beside it."""

    CREATING = "Creating"
    UPDATING = "Updating"
    IN_SERVICE = "InService"
    #: Serving with the versions it has, while one could not (re)start: that version says
    #: Failed with its reason; the spec is untouched, and the endpoint accepts changes.
    DEGRADED = "Degraded"
    FAILED = "Failed"
    DELETING = "Deleting"

    @property
    def is_terminal(self) -> bool:
        """Settled: no change is running (waiting stops here)."""
        return self in (Status.IN_SERVICE, Status.DEGRADED, Status.FAILED)

    def __str__(self) -> str:
        return self.value


class VersionState(BaseModel):
    """A deployed version as the backend reports it."""

    model_config = ConfigDict(frozen=True)

    name: str
    spec_hash: str | None = None
    status: Status = Status.IN_SERVICE
    spec: VersionSpec | None = None
    replicas: int | None = None
    #: Replica range and autoscaling as the platform holds them now (None: not reported).
    scaling: Scaling | None = None
    created_at: datetime | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    def __repr__(self) -> str:
        replicas = f", scaling={self.scaling.describe()!r}" if self.scaling is not None else ""
        return (
            f"VersionState(name={self.name!r}, status={self.status}, "
            f"spec_hash={self.spec_hash!r}{replicas})"
        )


class EndpointState(BaseModel):
    """An endpoint as the backend reports it: versions, split, shadow and status."""

    model_config = ConfigDict(frozen=True)

    name: str
    backend: str
    status: Status
    raw_status: str = ""
    versions: list[VersionState] = Field(default_factory=list)
    traffic: TrafficSplit = Field(default_factory=lambda: TrafficSplit({}))
    shadow: Shadow | None = None
    failure_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    url: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    def version(self, name: str) -> VersionState | None:
        """The deployed version named `name`, or None."""
        return next((v for v in self.versions if v.name == name), None)

    @property
    def version_names(self) -> list[str]:
        return [v.name for v in self.versions]

    # Rendering (endpointkit.render): a short repr, a text table for print(), a rich table in
    # terminals and HTML in notebooks. The full data stays in model_dump().

    def __repr__(self) -> str:
        from endpointkit.render import state_repr

        return state_repr(self)

    def __str__(self) -> str:
        from endpointkit.render import state_text

        return state_text(self)

    def __rich__(self) -> Any:
        from endpointkit.render import state_rich

        return state_rich(self)

    def _repr_html_(self) -> str:
        from endpointkit.render import state_html

        return state_html(self)


class Event(BaseModel):
    """One entry in an endpoint's history (append-only)."""

    model_config = ConfigDict(frozen=True)

    time: datetime
    endpoint: str
    kind: Literal[
        "created",
        "deployed",
        "undeployed",
        "traffic",
        "shadow",
        "failed",
        "deleted",
        "rollback",
        "rollout",
        "restarted",
        "health",
        "scaled",
    ]
    version: str | None = None
    message: str = ""
    traffic_before: dict[str, int] | None = None
    traffic_after: dict[str, int] | None = None

    def __repr__(self) -> str:
        from endpointkit.render import event_repr

        return event_repr(self)

    def __str__(self) -> str:
        from endpointkit.render import event_line

        return event_line(self)


class History(list[Event]):
    """An endpoint's events, oldest first: a list that prints one line per event, renders as
    a rich table in terminals and as HTML in notebooks."""

    def __repr__(self) -> str:
        from endpointkit.render import history_text

        return history_text(self)

    __str__ = __repr__

    def __rich__(self) -> Any:
        from endpointkit.render import history_rich

        return history_rich(self)

    def _repr_html_(self) -> str:
        from endpointkit.render import history_html

        return history_html(self)
