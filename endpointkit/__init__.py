"""endpointkit: one API for ML model endpoints on SageMaker, Vertex AI and your own machine.

```python
import endpointkit as ek

spec = ek.load_spec("examples/quickstart/endpoint.yaml")
ek.apply(spec)                                   # create / deploy / shift, idempotently
ep = ek.Endpoint(spec.name, backend=spec.backend)
print(ep.predict([[5.1, 3.5, 1.4, 0.2]]))        # predictions and the version that served
```

Names are imported on first use, so `import endpointkit` stays cheap and never loads a cloud SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # spec
    "AllAtOnce": "endpointkit.spec",
    "AsyncInference": "endpointkit.spec",
    "BlueGreen": "endpointkit.spec",
    "Canary": "endpointkit.spec",
    "Gates": "endpointkit.spec",
    "HealthCheck": "endpointkit.spec",
    "Linear": "endpointkit.spec",
    "RolloutStrategy": "endpointkit.spec",
    "Autoscaling": "endpointkit.spec",
    "EndpointSpec": "endpointkit.spec",
    "EndpointState": "endpointkit.state",
    "Event": "endpointkit.state",
    "History": "endpointkit.state",
    "Resources": "endpointkit.spec",
    "Serverless": "endpointkit.spec",
    "Shadow": "endpointkit.spec",
    "Status": "endpointkit.state",
    "TrafficSplit": "endpointkit.spec",
    "VersionSpec": "endpointkit.spec",
    "VersionState": "endpointkit.state",
    "load_spec": "endpointkit.spec",
    # handles
    "AsyncEndpoint": "endpointkit.endpoint",
    "Endpoint": "endpointkit.endpoint",
    # plan / apply
    "Plan": "endpointkit.planner",
    "apply": "endpointkit.planner",
    "destroy": "endpointkit.planner",
    "plan": "endpointkit.planner",
    # invocation
    "AsyncInvocation": "endpointkit.async_invocation",
    "AsyncStreamResult": "endpointkit.invocation",
    "InvocationStatus": "endpointkit.async_invocation",
    "InvokeResult": "endpointkit.invocation",
    "Prediction": "endpointkit.invocation",
    "StreamResult": "endpointkit.invocation",
    "RolloutResult": "endpointkit.rollout",
    # backends
    "Backend": "endpointkit.adapters.base",
    "Capability": "endpointkit.adapters.base",
    "available_backends": "endpointkit.adapters.registry",
    "get_backend": "endpointkit.adapters.registry",
    "register_backend": "endpointkit.adapters.registry",
    # errors
    "AlreadyExists": "endpointkit.errors",
    "Conflict": "endpointkit.errors",
    "DeploymentFailed": "endpointkit.errors",
    "EndpointKitError": "endpointkit.errors",
    "MissingDependency": "endpointkit.errors",
    "ModelError": "endpointkit.errors",
    "NotFound": "endpointkit.errors",
    "NotReady": "endpointkit.errors",
    "PayloadTooLarge": "endpointkit.errors",
    "PermissionDenied": "endpointkit.errors",
    "QuotaExceeded": "endpointkit.errors",
    "Retryable": "endpointkit.errors",
    "RolledBack": "endpointkit.errors",
    "SettingIgnoredWarning": "endpointkit.errors",
    "Throttled": "endpointkit.errors",
    "Timeout": "endpointkit.errors",
    "Unavailable": "endpointkit.errors",
    "UnknownBackend": "endpointkit.errors",
    "Unsupported": "endpointkit.errors",
    "ValidationError": "endpointkit.errors",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'endpointkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from endpointkit.adapters.base import Backend, Capability
    from endpointkit.adapters.registry import available_backends, get_backend, register_backend
    from endpointkit.async_invocation import AsyncInvocation, InvocationStatus
    from endpointkit.endpoint import AsyncEndpoint, Endpoint
    from endpointkit.errors import (
        AlreadyExists,
        Conflict,
        DeploymentFailed,
        EndpointKitError,
        MissingDependency,
        ModelError,
        NotFound,
        NotReady,
        PayloadTooLarge,
        PermissionDenied,
        QuotaExceeded,
        Retryable,
        RolledBack,
        SettingIgnoredWarning,
        Throttled,
        Timeout,
        Unavailable,
        UnknownBackend,
        Unsupported,
        ValidationError,
    )
    from endpointkit.invocation import AsyncStreamResult, InvokeResult, Prediction, StreamResult
    from endpointkit.planner import Plan, apply, destroy, plan
    from endpointkit.rollout import RolloutResult
    from endpointkit.spec import (
        AllAtOnce,
        AsyncInference,
        Autoscaling,
        BlueGreen,
        Canary,
        EndpointSpec,
        Gates,
        HealthCheck,
        Linear,
        Resources,
        RolloutStrategy,
        Serverless,
        Shadow,
        TrafficSplit,
        VersionSpec,
        load_spec,
    )
    from endpointkit.state import EndpointState, Event, History, Status, VersionState
