"""The pip command that adds an optional extra to *this* installation.

Installed from the package index, that is `pip install 'endpointkit[EXTRA]'`; installed from
a checkout (`pip install -e .`, the README's development path), the same command names the
checkout, since the index may not have the version you run. Read only when an error is
being worded, never at import time.
"""

from __future__ import annotations

import json
from importlib import metadata
from urllib.parse import unquote, urlparse

__all__ = ["install_hint"]


def install_hint(extra: str) -> str:
    """`pip install ...` for endpointkit's `extra` (e.g. "serve"), matching how it was installed."""
    source = _local_source()
    if source is None:
        return f"pip install 'endpointkit[{extra}]'"
    path, editable = source
    return f"pip install {'-e ' if editable else ''}'{path}[{extra}]'"


def _local_source() -> tuple[str, bool] | None:
    """The folder endpointkit was installed from, and whether editable (PEP 610)."""
    try:
        recorded = metadata.distribution("endpointkit").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not recorded:
        return None
    try:
        data = json.loads(recorded)
    except ValueError:
        return None
    url = urlparse(str(data.get("url", "")))
    if url.scheme != "file" or "dir_info" not in data:
        return None
    return unquote(url.path), bool(data["dir_info"].get("editable"))
