"""Capabilities and limits are per instance: what a backend's settings make of it."""

from __future__ import annotations

from endpointkit.adapters import limits
from endpointkit.adapters.mock import MockBackend
from endpointkit.adapters.vertex import VertexBackend


def test_a_vertex_backend_takes_the_limits_of_its_endpoint_kind() -> None:
    shared = VertexBackend(project="p")
    dedicated = VertexBackend(project="p", dedicated_endpoint=True)
    assert shared.capabilities == limits.VERTEX.capabilities
    assert dedicated.capabilities == limits.VERTEX_DEDICATED.capabilities
    assert (shared.max_payload_bytes, dedicated.max_payload_bytes) == (1_572_864, 10 * 1024 * 1024)
    assert type(shared) is type(dedicated)  # one class: the instance carries the difference


def test_a_mock_like_a_backend_is_still_a_mock_backend() -> None:
    like = MockBackend(like="vertex")
    assert type(like) is MockBackend
    assert like.capabilities == limits.VERTEX.capabilities
    assert like.name == "mock (like vertex)"
    assert MockBackend().capabilities != like.capabilities  # the class default is untouched


def test_every_profile_is_offered() -> None:
    assert sorted(limits.PROFILES) == ["local", "sagemaker", "vertex", "vertex-dedicated"]
