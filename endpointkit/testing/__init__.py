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
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from endpointkit.adapters.mock import Call, Fault, MockBackend
from endpointkit.adapters.registry import override_backends

__all__ = ["Call", "Fault", "MockBackend", "mock_endpoints"]


@contextmanager
def mock_endpoints(**settings: Any) -> Iterator[MockBackend]:
    """A fresh MockBackend that every backend name resolves to until the block ends."""
    backend = MockBackend(**settings)
    with override_backends(backend):
        yield backend
