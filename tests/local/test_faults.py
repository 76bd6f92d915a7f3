"""Faults a single request or client can cause, with real processes: a request that kills its
version, overload, hostile uploads and headers. None may take the endpoint down."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from tests.local.harness import deaths, faulty

pytestmark = pytest.mark.slow  # real processes and sockets


def poll(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {limit:g} s waiting for: {what}")
        time.sleep(0.05)


def healthy(local: LocalBackend, name: str, version: str) -> bool:
    state = local.get(name).version(version)
    return state is not None and state.details.get("healthy") is True


def test_query_of_death_kills_one_version_only(
    make_endpoint: Callable[..., Endpoint], local: LocalBackend, tmp_path: Path
) -> None:
    """A request that crashes its version gets a 5xx; it is never replayed to another version,
    so the rest of the endpoint keeps serving."""
    v1, v2 = faulty(tmp_path, "v1"), faulty(tmp_path, "v2")
    ep = make_endpoint(v1, v2, traffic={"v1": 50, "v2": 50})
    url = f"{local.gateway_url()}/endpoints/{ep.name}/predict"
    with httpx.Client(timeout=30) as http:
        for trial in range(1, 3):
            # warm keep-alive connections to both versions: the replay went over a pooled one
            seen = {
                http.post(url, json={"instances": [1]}).json()["predictions"][0] for _ in range(20)
            }
            assert seen == {"v1", "v2"}
            answer = http.post(url, json={"instances": ["die"]})
            assert answer.status_code >= 500, answer.text
            assert deaths(v1) + deaths(v2) == trial, "the crashing request was replayed"
            # the survivor answers right away, without waiting for the restart
            for _ in range(10):
                assert http.post(url, json={"instances": [1]}).status_code == 200
            poll(
                lambda: healthy(local, ep.name, "v1") and healthy(local, ep.name, "v2"),
                "both versions healthy again",
            )
