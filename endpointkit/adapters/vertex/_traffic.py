"""Traffic split updates on Vertex AI: read-modify-write with the endpoint's etag.

UpdateEndpoint(trafficSplit) carries the etag of the state the change was decided on, so a
change another writer made since is refused (ABORTED), not overwritten; the Conflict names the
other writer's split. A retry first looks whether the split is in place already: the first
attempt's answer may have been lost after it took effect, and its etag is stale then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from endpointkit.errors import Conflict, EndpointKitError

if TYPE_CHECKING:
    from endpointkit.adapters.vertex._clients import Connection
    from endpointkit.state import EndpointState
    from endpointkit.traffic import TrafficSplit

__all__ = ["describe_split", "update_split"]


def update_split(
    conn: Connection,
    name: str,
    path: str,
    split: Mapping[str, int],
    *,
    read: EndpointState | None,
    timeout: float,
    reread: Callable[[], EndpointState],
) -> Any:
    """UpdateEndpoint(trafficSplit) conditional on `read`'s etag (None: a blind write, as a
    delete clears the split whatever it is)."""
    types = conn.types()
    from google.protobuf import field_mask_pb2

    endpoints = conn.client("endpoints")
    etag = str(read.details.get("etag") or "") if read is not None else ""

    def applied() -> Any:
        current = endpoints.get_endpoint(name=path, retry=None, timeout=timeout)
        return current if dict(current.traffic_split) == dict(split) else None

    try:
        return conn.call(
            "set_traffic",
            lambda: endpoints.update_endpoint(
                endpoint=types.Endpoint(name=path, traffic_split=dict(split), etag=etag),
                update_mask=field_mask_pb2.FieldMask(paths=["traffic_split"]),
                retry=None,
                timeout=timeout,
            ),
            endpoint=name,
            recheck=applied,
        )
    except Conflict as exc:
        if read is None or exc.provider_code != "ABORTED":
            raise
        raise lost_race(name, read, reread) from exc


def lost_race(name: str, read: EndpointState, reread: Callable[[], EndpointState]) -> Conflict:
    """The Conflict for a traffic change refused for a stale etag, naming the change that came
    in between."""
    try:
        now = reread()
    except EndpointKitError:
        current = "something endpointkit could not read back"
    else:
        current = describe_split(now.traffic)
        if now.updated_at is not None:
            current += f" (updated {now.updated_at.isoformat(timespec='seconds')})"
    return Conflict(
        f"the traffic split of endpoint {name!r} changed after endpointkit read it, so "
        f"Vertex AI refused this change (stale etag): it was {describe_split(read.traffic)}, "
        f"another writer made it {current}. Nothing was changed by this call.",
        hint=f"Check it with 'endpointkit status {name} --backend vertex', then set the "
        "traffic again if you still want the change.",
        backend="vertex",
        operation="set_traffic",
        endpoint=name,
        provider_code="ABORTED",
    )


def describe_split(split: TrafficSplit) -> str:
    """e.g. "v1=30, v2=70" (only versions with traffic), or "no traffic"."""
    return ", ".join(f"{v}={p}" for v, p in split.items() if p > 0) or "no traffic"
