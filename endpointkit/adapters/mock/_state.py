"""The mock's in-memory endpoints, how they pass through Creating/Updating, and how they read
back as the EndpointState every backend returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from endpointkit.adapters.mock._wire import Handler
from endpointkit.spec import Shadow, TrafficSplit, VersionSpec
from endpointkit.state import EndpointState, Status, VersionState


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class MockVersion:
    spec: VersionSpec
    handler: Handler
    created_at: datetime


@dataclass
class MockEndpoint:
    name: str
    tags: dict[str, str]
    versions: dict[str, MockVersion]
    traffic: TrafficSplit
    created_at: datetime
    updated_at: datetime
    shadow: Shadow | None = None
    status: Status = Status.IN_SERVICE
    pending_polls: int = 0
    failure_reason: str | None = None

    def transition(self, status: Status, polls: int) -> None:
        """A change: report `status` for the next `polls` reads (none: settle at once)."""
        self.updated_at = now()
        if polls > 0:
            self.status = status
            self.pending_polls = polls
        elif self.status is not Status.FAILED:
            self.status = Status.IN_SERVICE

    def poll(self) -> None:
        """One read: a change in progress comes one poll closer to settling."""
        if self.pending_polls > 0:
            self.pending_polls -= 1
            if self.pending_polls == 0 and self.status is not Status.FAILED:
                self.status = Status.IN_SERVICE

    def state(self, backend: str) -> EndpointState:
        return EndpointState(
            name=self.name,
            backend=backend,
            status=self.status,
            raw_status=self.status.value,
            versions=[
                VersionState(
                    name=v.spec.name,
                    spec_hash=v.spec.spec_hash,
                    spec=v.spec,
                    replicas=v.spec.resources.min_replicas,
                    scaling=v.spec.scaling,
                    created_at=v.created_at,
                )
                for v in self.versions.values()
            ],
            traffic=self.traffic,
            shadow=self.shadow,
            failure_reason=self.failure_reason,
            created_at=self.created_at,
            updated_at=self.updated_at,
            url=f"mock://{self.name}",
            details={"tags": dict(self.tags)},
        )
