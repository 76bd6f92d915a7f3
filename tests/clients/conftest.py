"""Fixtures for the client tests: one local gateway per module, and each cloud's own client
built exactly as its documentation shows, with only the address and credentials changed."""

from __future__ import annotations

from typing import Any

# The local backend's own fixtures: one gateway per module, versions, make_endpoint.
from tests.local.conftest import local, make_endpoint, versions

__all__ = ["local", "make_endpoint", "versions"]

PROJECT, LOCATION = "demo", "us-central1"


def endpoint_path(name: str) -> str:
    return f"projects/{PROJECT}/locations/{LOCATION}/endpoints/{name}"


def prediction_client(url: str, credentials: Any = None, transport: str = "rest") -> Any:
    """`aiplatform_v1.PredictionServiceClient` as Google's samples build it, pointed at `url`."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1

    return aiplatform_v1.PredictionServiceClient(
        client_options=ClientOptions(api_endpoint=url),
        transport=transport,
        credentials=credentials or AnonymousCredentials(),
    )
