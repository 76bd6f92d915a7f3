"""pytest plugin (registered as the `endpointkit` pytest11 entry point).

Fixture `endpointkit_mock`: a fresh MockBackend that every backend name resolves to for the
duration of one test, with a fixed routing seed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from endpointkit.adapters.mock import MockBackend
from endpointkit.testing import mock_endpoints


@pytest.fixture
def endpointkit_mock() -> Iterator[MockBackend]:
    """Route every endpointkit backend to an in-process mock for this test."""
    with mock_endpoints(seed=0) as backend:
        yield backend
