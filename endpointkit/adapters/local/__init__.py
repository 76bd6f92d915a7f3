"""The local backend: real serving processes on this machine behind one gateway.

State lives in SQLite under `ENDPOINTKIT_HOME` (default: a project's `.endpointkit/` folder
if there is one, else `~/.local/state/endpointkit/`); a gateway daemon,
started on demand, supervises one serving process per version and routes requests by the
traffic split over the SageMaker runtime, Vertex AI and plain HTTP paths.
"""

from __future__ import annotations

from endpointkit.adapters.local.backend import LocalBackend

__all__ = ["LocalBackend"]

LocalBackend.__module__ = "endpointkit.adapters.local"
