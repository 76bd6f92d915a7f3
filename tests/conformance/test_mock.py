"""The mock backend in the shared scenario suite."""

from __future__ import annotations

import pytest

from endpointkit.adapters.mock import MockBackend
from tests.conformance.suite import BackendSuite


class TestMockBackend(BackendSuite):
    @pytest.fixture
    def backend(self) -> MockBackend:
        # transition_polls: every change reports Creating/Updating first, like a cloud.
        return MockBackend(seed=11, transition_polls=2, sleep=lambda _: None)
