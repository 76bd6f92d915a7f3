"""Faults a single request or client can cause, with real processes: a request that kills its
version, overload, hostile uploads and headers. None may take the endpoint down."""

from __future__ import annotations

import socket
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


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_aborted_uploads_give_their_memory_back(
    make_endpoint: Callable[..., Endpoint], local: LocalBackend, tmp_path: Path
) -> None:
    ep = make_endpoint(faulty(tmp_path, "v1"))
    pid = local.gateway_status()["pid"]
    before = rss_mb(pid)
    host, port = local.gateway_url().removeprefix("http://").split(":")
    chunk = b"v" * (1 << 20)
    for _ in range(3):  # rounds of 4 concurrent 60 MiB uploads, each aborted at 48 MiB
        socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(4)]
        for sock in socks:
            sock.sendall(
                b"POST /endpoints/%s/predict HTTP/1.1\r\nhost: a\r\ncontent-length: %d\r\n\r\n"
                % (ep.name.encode(), 60 << 20)
            )
        for _ in range(48):
            for sock in socks:
                sock.sendall(chunk)
        for sock in socks:
            sock.close()
    time.sleep(1.0)
    after = rss_mb(pid)
    print(f"gateway RSS {before:.0f} MB before, {after:.0f} MB after 12 aborted uploads")
    assert after < before + 64, (before, after)
    with httpx.Client(timeout=30) as http:  # and it still serves
        url = f"{local.gateway_url()}/endpoints/{ep.name}/predict"
        assert http.post(url, json={"instances": [1]}).status_code == 200


@pytest.mark.parametrize(
    ("instance", "status", "retry_after", "aws", "google"),
    [
        ("busy", 503, "7", "ServiceUnavailable", "UNAVAILABLE"),
        ("throttled", 429, "1", "ThrottlingException", "RESOURCE_EXHAUSTED"),
    ],
)
def test_back_pressure_is_answered_as_each_platform_does(
    make_endpoint: Callable[..., Endpoint],
    local: LocalBackend,
    tmp_path: Path,
    instance: str,
    status: int,
    retry_after: str,
    aws: str,
    google: str,
) -> None:
    """A version's 503/429 is overload, not a model error: SageMaker's throttling/unavailable
    errors, Google's RESOURCE_EXHAUSTED/UNAVAILABLE, and the version's Retry-After, kept."""
    ep = make_endpoint(faulty(tmp_path, "v1"))
    base = local.gateway_url()
    body = {"instances": [instance]}
    vertex = f"{base}/v1/projects/p/locations/l/endpoints/{ep.name}"
    with httpx.Client(timeout=30) as http:
        answer = http.post(f"{base}/endpoints/{ep.name}/invocations", json=body)
        assert answer.status_code == status, answer.text
        assert answer.headers["x-amzn-errortype"] == aws
        assert answer.headers["retry-after"] == retry_after
        assert "message" in answer.json()
        for verb in ("predict", "rawPredict"):
            answer = http.post(f"{vertex}:{verb}", json=body)
            assert answer.status_code == status, answer.text
            assert answer.headers["retry-after"] == retry_after
            error = answer.json()["error"]
            assert (error["code"], error["status"]) == (status, google)
        answer = http.post(f"{base}/endpoints/{ep.name}/predict", json=body)
        assert answer.status_code == status
        assert answer.headers["retry-after"] == retry_after
