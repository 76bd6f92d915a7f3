"""In-process backend for unit tests: no processes, no network, deterministic.

Each version runs a Python callable: a function registered with `MockBackend.register`, or the
version's own predictor (its `predictor` reference or model directory, loaded with the same
loader as the serving container). Requests are routed by the traffic split with a seeded
random generator, every call is recorded, and faults can be injected: throttling, model
errors, unavailability, latency, and versions that fail to deploy.
"""

from __future__ import annotations

from endpointkit.adapters.mock._faults import Fault, FaultKind
from endpointkit.adapters.mock._records import Call
from endpointkit.adapters.mock._wire import Handler
from endpointkit.adapters.mock.backend import MockBackend

__all__ = ["Call", "Fault", "FaultKind", "Handler", "MockBackend"]

for _cls in (Call, Fault, MockBackend):
    _cls.__module__ = "endpointkit.adapters.mock"
del _cls
