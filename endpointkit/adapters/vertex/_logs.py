"""Cloud Logging: where an endpoint's container logs are, and its last error lines.

A failed deploy reports the container's last errors beside the operation's own error. This is
one `entries:list` call over the backend's httpx client: google-cloud-logging is not installed
with google-cloud-aiplatform, and one read-only call does not justify another dependency.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import quote

from endpointkit.adapters.vertex._clients import Connection

__all__ = ["container_errors", "logs_url"]

_RESOURCE = 'resource.type="aiplatform.googleapis.com/Endpoint"'


def logs_url(project: str, name: str) -> str:
    """The Cloud console's Logs Explorer, filtered to endpoint `name`."""
    query = f'{_RESOURCE}\nresource.labels.endpoint_id="{name}"'
    return (
        f"https://console.cloud.google.com/logs/query;query={quote(query, safe='')}"
        f"?project={project}"
    )


def container_errors(conn: Connection, name: str, since: datetime, limit: int = 3) -> list[str]:
    """The last error lines the endpoint's containers logged since `since` (best effort)."""
    stamp = since.astimezone(timezone.utc).isoformat(timespec="microseconds")
    body = {
        "resourceNames": [f"projects/{conn.project}"],
        "filter": (
            f'{_RESOURCE} AND resource.labels.endpoint_id="{name}" AND severity>=ERROR AND '
            f'timestamp>="{stamp.replace("+00:00", "Z")}"'
        ),
        "orderBy": "timestamp desc",
        "pageSize": limit,
    }
    try:
        response = conn.http().post(f"{conn.logging_base}/v2/entries:list", json=body, timeout=30)
        entries = response.json().get("entries", []) if response.status_code == 200 else []
    except Exception:  # logs are a courtesy: the operation's own error is already in hand
        return []
    lines = []
    for entry in entries:
        payload = entry.get("jsonPayload") or {}
        text = payload.get("error") or payload.get("message") or entry.get("textPayload") or ""
        if text:
            lines.append(str(text).strip().splitlines()[-1][:300])
    return lines
