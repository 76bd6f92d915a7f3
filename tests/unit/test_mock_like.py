"""`mock_endpoints(like=...)`: the mock refuses what the imitated platform refuses."""

from __future__ import annotations

from typing import Any

import pytest

from endpointkit import Endpoint, VersionSpec
from endpointkit.adapters.base import Capability
from endpointkit.adapters.mock import MockBackend
from endpointkit.errors import PayloadTooLarge, Unsupported, ValidationError
from endpointkit.spec import Shadow
from endpointkit.testing import mock_endpoints

SEVEN_MB = b"[" + b"1," * (7 * 1024 * 1024 // 2) + b"1]"


def count(rows: list[Any]) -> list[int]:
    return [1 for _ in rows]


def score(version: str | None = None) -> Any:
    """Application code: score one row through the 'churn' endpoint on Vertex AI."""
    return Endpoint("churn", backend="vertex").predict([[1.0]], version=version).predictions


def test_pinning_a_version_passes_on_a_plain_mock_and_fails_like_vertex() -> None:
    with mock_endpoints() as mock:
        mock.add_endpoint("churn", {"v1": count, "v2": count})
        assert score(version="v2") == [1]
    with mock_endpoints(like="vertex") as mock:
        mock.add_endpoint("churn", {"v1": count, "v2": count})
        assert score() == [1]  # the unpinned call works on Vertex too
        with pytest.raises(Unsupported, match=r"mock \(like vertex\) backend") as caught:
            score(version="v2")
    assert "target version" in str(caught.value)
    assert caught.value.backend == "mock (like vertex)"
    assert [c.target_version for c in mock.calls_to("churn")] == [None]  # nothing was sent
    with mock_endpoints(like="vertex-dedicated") as mock:
        mock.add_endpoint("churn", {"v1": count, "v2": count})
        assert score(version="v2") == [1]


@pytest.mark.parametrize(
    ("like", "limit"),
    [(None, 6 * 1024 * 1024), ("sagemaker", 6 * 1024 * 1024), ("vertex", 1_572_864)],
)
def test_a_7_mb_body_is_too_large(like: str | None, limit: int) -> None:
    with mock_endpoints(like=like) as mock:
        mock.add_endpoint("churn", {"v1": count})
        with pytest.raises(PayloadTooLarge, match=f"at most {limit:,}"):
            Endpoint("churn", backend="sagemaker").invoke(SEVEN_MB)
        assert not mock.calls
        assert Endpoint("churn", mock).invoke(b"[[1]]").json() == [1]


def test_vertex_refuses_a_2_mb_body_that_sagemaker_takes() -> None:
    body = b"[" + b"1," * (1024 * 1024) + b"1]"
    with mock_endpoints(like="sagemaker") as mock:
        mock.add_endpoint("churn", {"v1": count})
        assert Endpoint("churn", mock).invoke(body).json() == [1] * (1024 * 1024 + 1)
    with mock_endpoints(like="vertex") as mock:
        mock.add_endpoint("churn", {"v1": count})
        with pytest.raises(PayloadTooLarge, match=r"mock \(like vertex\) accepts at most"):
            Endpoint("churn", mock).invoke(body)


def test_custom_attributes_like_sagemaker_and_vertex() -> None:
    with mock_endpoints(like="sagemaker") as mock:
        mock.add_endpoint("churn", {"v1": count})
        ep = Endpoint("churn", mock)
        assert ep.invoke(b"[[1]]", custom_attributes="a" * 1024).custom_attributes == "a" * 1024
        with pytest.raises(ValidationError, match="limited to 1024 characters"):
            ep.invoke(b"[[1]]", custom_attributes="a" * 1025)
    with mock_endpoints() as mock:  # the plain mock has no limit
        mock.add_endpoint("churn", {"v1": count})
        assert Endpoint("churn", mock).invoke(b"[[1]]", custom_attributes="a" * 1025)
    for like in ("vertex", "vertex-dedicated"):
        with mock_endpoints(like=like) as mock:
            mock.add_endpoint("churn", {"v1": count})
            with pytest.raises(Unsupported, match="custom attributes"):
                Endpoint("churn", mock).invoke(b"[[1]]", custom_attributes="trace=1")
            assert not mock.calls


def test_vertex_shared_endpoints_neither_stream_nor_shadow() -> None:
    with mock_endpoints(like="vertex") as mock:
        mock.add_endpoint("chat", {"v1": count, "v2": count})
        ep = Endpoint("chat", mock)
        with pytest.raises(Unsupported, match="streaming"):
            ep.invoke_stream(b"[1]")
        with pytest.raises(Unsupported, match="shadow"):
            mock.set_shadow("chat", Shadow(version="v2", sample_percent=10))
        with pytest.raises(Unsupported, match="serverless"):
            mock.deploy("chat", VersionSpec.model_validate({"name": "v3", "serverless": {}}), 0)


def test_a_profile_declares_exactly_its_backends_capabilities() -> None:
    from endpointkit.adapters import limits

    for name, profile in limits.PROFILES.items():
        mock = MockBackend(like=name)
        assert isinstance(mock, MockBackend)
        # All of the platform's, less the one the mock does not emulate: in-place rollouts.
        assert mock.capabilities == profile.capabilities - {Capability.NATIVE_ROLLOUT}
        assert mock.max_payload_bytes == profile.max_payload_bytes
        assert mock.name == f"mock (like {name})"
    assert MockBackend().name == "mock"
    assert Capability.TARGET_VERSION in MockBackend.capabilities  # profiles never leak into it
    assert type(MockBackend(like="vertex")) is type(MockBackend(like="vertex"))


def test_an_unknown_profile_names_the_choices() -> None:
    with pytest.raises(ValidationError, match="vertex-dedicated"):
        MockBackend(like="azure")
