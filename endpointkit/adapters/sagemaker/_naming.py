"""Deterministic SageMaker resource names and endpointkit's ownership tags.

SageMaker names (models, endpoint configs) are at most 63 characters of
`[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?`. Names here are built from the endpoint, the version
and a content hash; when the readable part is too long it is cut and a digest of the whole is
appended, so two different inputs never share a name.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

__all__ = [
    "ENDPOINT_TAG",
    "HASH_TAG",
    "HISTORY_TAG",
    "MANAGED_BY",
    "MANAGED_TAG",
    "VERSION_TAG",
    "config_name",
    "digest",
    "hash_from_model_name",
    "model_name",
    "owned_prefix",
    "tags_dict",
    "tags_list",
    "version_from_model_name",
]

MAX_NAME = 63
HASH_LEN = 12
MANAGED_TAG = "managed-by"
MANAGED_BY = "endpointkit"
ENDPOINT_TAG = "endpointkit:endpoint"
VERSION_TAG = "endpointkit:version"
HASH_TAG = "endpointkit:spec-hash"
HISTORY_TAG = "endpointkit:history"
_HEX = re.compile(r"^[0-9a-f]{12}$")


def digest(data: Any, length: int = HASH_LEN) -> str:
    """Stable hex digest of JSON-able data (or a string)."""
    text = data if isinstance(data, str) else json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _fit(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else a cut of it plus a digest of the whole."""
    if len(text) <= limit:
        return text
    head = text[: limit - 9].rstrip("-")
    return f"{head}-{digest(text, 8)}"


def model_name(endpoint: str, version: str, spec_hash: str) -> str:
    """`<endpoint>-<version>-<spec hash>`; the last 12 characters are always the hash."""
    stem = _fit(f"{endpoint}-{version}", MAX_NAME - HASH_LEN - 1)
    return f"{stem}-{spec_hash}"


def hash_from_model_name(endpoint: str, version: str, name: str) -> str | None:
    """The spec hash in a model name endpointkit made for (endpoint, version), else None."""
    candidate = name[-HASH_LEN:]
    if _HEX.match(candidate) and model_name(endpoint, version, candidate) == name:
        return candidate
    return None


def version_from_model_name(endpoint: str, name: str) -> str | None:
    """The version a model name endpointkit made for `endpoint` names, if the name was not
    shortened to fit (then only the model's `endpointkit:version` tag says)."""
    candidate, _, spec_hash = name.rpartition("-")
    prefix = f"{endpoint}-"
    if not _HEX.match(spec_hash) or not candidate.startswith(prefix):
        return None
    version = candidate[len(prefix) :]
    return version if version and model_name(endpoint, version, spec_hash) == name else None


def config_name(endpoint: str, content: Any) -> str:
    """`<endpoint>-<digest of the config's content>`: re-creating the same config is a no-op."""
    return f"{_fit(endpoint, MAX_NAME - HASH_LEN - 2)}-c{digest(content)}"


def owned_prefix(endpoint: str) -> str:
    """Every model and config name endpointkit makes for `endpoint` starts with this."""
    return endpoint[:40]


def tags_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def tags_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in tags or []}
