"""Helpers for testing code that uses endpointkit, with no network and no processes.

```python
from endpointkit.testing import mock_endpoints

def test_scoring():
    with mock_endpoints() as mock:
        mock.add_endpoint("churn", {"v1": lambda rows: [sum(r) for r in rows]})
        assert my_app.score([[1, 2]]) == [3]          # my_app uses Endpoint("churn", ...)
        assert mock.calls_to("churn")[0].json() == {"instances": [[1, 2]]}
```

Inside the block every backend name (sagemaker, vertex, local, ...) resolves to the mock, so
application code runs unchanged. The pytest plugin offers the same as the `endpointkit_mock`
fixture.

The plain mock allows nearly everything. `mock_endpoints(like="vertex")` (or "sagemaker",
"vertex-dedicated", "local") gives it exactly that backend's capabilities and limits, so a test
catches code that only works on the mock:

| like               | pin a version | stream | shadow | max request | custom attributes |
|--------------------|---------------|--------|--------|-------------|-------------------|
| (none)             | yes           | yes    | yes    | 6 MiB       | any               |
| "sagemaker"        | yes           | yes    | yes    | 6 MiB       | up to 1024 chars  |
| "vertex"           | Unsupported   | no     | no     | 1.5 MB      | Unsupported       |
| "vertex-dedicated" | yes           | yes    | no     | 10 MiB      | Unsupported       |
| "local"            | yes           | yes    | yes    | 6 MiB       | any               |

Errors name the imitation: "the mock (like vertex) backend does not support target version".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from endpointkit.adapters.mock import Call, Fault, MockBackend
from endpointkit.adapters.registry import override_backends

__all__ = ["Call", "Fault", "MockBackend", "mock_endpoints"]


@contextmanager
def mock_endpoints(*, like: str | None = None, **settings: Any) -> Iterator[MockBackend]:
    """A fresh MockBackend that every backend name resolves to until the block ends.

    `like` ("sagemaker", "vertex", "vertex-dedicated", "local") gives the mock that backend's
    capabilities and request limits (see the module docstring); an unknown name raises
    ValidationError. `settings` go to MockBackend (seed, transition_polls, predictors, sleep).
    """
    backend = MockBackend(like=like, **settings)
    with override_backends(backend):
        yield backend
