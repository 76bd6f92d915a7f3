"""Helpers shared by the Vertex tests: a backend wired to a running VertexFake."""

from __future__ import annotations

from typing import Any

from endpointkit.adapters.vertex import VertexBackend
from tests.fakes.vertex import VertexFake

STAGING_BUCKET = "gs://endpointkit-staging/tests"
#: The fake runs `python -m endpointkit.serving` whatever the image; the adapter needs one named.
SERVING_IMAGE = "us-central1-docker.pkg.dev/fake-project/endpointkit/serving:test"


def backend_settings(fake: VertexFake, **overrides: Any) -> dict[str, Any]:
    """The settings a test gives the vertex backend (also usable from a spec or `--set`)."""
    return {
        "project": fake.project,
        "location": fake.location,
        "api_endpoint": fake.url,
        "credentials": "anonymous",
        "transport": "rest",
        "staging_bucket": STAGING_BUCKET,
        "serving_image": SERVING_IMAGE,
        **overrides,
    }


def make_backend(fake: VertexFake, **overrides: Any) -> VertexBackend:
    """A VertexBackend on the fake; retries sleep no time so injected faults stay fast."""
    settings = backend_settings(fake, **overrides)
    settings.setdefault("sleep", lambda _: None)
    return VertexBackend(**settings)


def grpc_settings(fake: VertexFake, grpc_target: str) -> dict[str, Any]:
    """Overrides for `backend_settings`/`make_backend`: GAPIC over plaintext gRPC to the fake's
    gRPC front end (tests.fakes.vertex_grpc); GCS and Cloud Logging stay on its REST one."""
    return {
        "api_endpoint": grpc_target,
        "transport": "grpc",
        "storage_endpoint": fake.url,
        "logging_endpoint": fake.url,
    }
