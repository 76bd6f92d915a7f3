"""endpointkit.adapters.limits states what the real backends declare (until they import it)."""

from __future__ import annotations

import pytest

from endpointkit.adapters import limits
from endpointkit.adapters.base import Backend
from endpointkit.adapters.local import LocalBackend
from endpointkit.adapters.sagemaker import SageMakerBackend
from endpointkit.adapters.vertex import VertexBackend, VertexDedicatedBackend


@pytest.mark.parametrize(
    ("profile", "backend"),
    [
        (limits.SAGEMAKER, SageMakerBackend),
        (limits.VERTEX, VertexBackend),
        (limits.VERTEX_DEDICATED, VertexDedicatedBackend),
        (limits.LOCAL, LocalBackend),
    ],
    ids=lambda value: getattr(value, "backend", ""),
)
def test_limits_equal_the_real_backends(profile: limits.Limits, backend: type[Backend]) -> None:
    assert profile.capabilities == backend.capabilities
    assert profile.max_payload_bytes == backend.max_payload_bytes


def test_every_profile_is_offered() -> None:
    assert sorted(limits.PROFILES) == ["local", "sagemaker", "vertex", "vertex-dedicated"]
