"""Routing through the real gateway: splits, shifts, target versions, sticky sessions, shadow."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from endpointkit.errors import NotFound
from endpointkit.spec import Resources
from tests.conformance.suite import Versions

pytestmark = pytest.mark.slow  # real processes and sockets


def served(ep: Endpoint, n: int) -> Counter[str | None]:
    return Counter(ep.predict([[1.0]]).version for _ in range(n))


def test_split_shift_and_traffic_changes_without_restart(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.echo("v2"), traffic={"v1": 70, "v2": 30})
    gateway_pid = local.store.gateway().pid
    counts = served(ep, 100)
    assert counts["v1"] > counts["v2"] > 0
    ep.set_traffic({"v1": 0, "v2": 100}, timeout=60)
    assert set(served(ep, 20)) == {"v2"}
    ep.set_traffic({"v1": 100}, timeout=60)
    assert set(served(ep, 20)) == {"v1"}
    assert local.store.gateway().pid == gateway_pid  # picked up live, no restart
    state = ep.status()
    assert state.url is not None
    assert state.url.endswith(f"/endpoints/{ep.name}/invocations")
    assert {v.name for v in state.versions} == {"v1", "v2"}


def test_target_version_on_every_front_door(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.echo("v2"))
    base = local.gateway_url()
    body = b'{"instances": [[1.0]]}'
    with httpx.Client(base_url=base) as http:
        plain = http.post(
            f"/endpoints/{ep.name}/predict", content=body, headers={"x-endpointkit-version": "v2"}
        )
        assert plain.json() == {"predictions": ["v2"]}
        assert plain.headers["x-endpointkit-version"] == "v2"
        sm = http.post(
            f"/endpoints/{ep.name}/invocations",
            content=body,
            headers={"content-type": "application/json", "x-amzn-sagemaker-target-variant": "v2"},
        )
        assert sm.headers["x-amzn-invoked-production-variant"] == "v2"
        vx = http.post(
            f"/v1/projects/p/locations/l/endpoints/{ep.name}:predict",
            content=body,
            headers={"x-vertex-ai-deployed-model-id": "v2"},
        )
        assert vx.json()["deployedModelId"] == "v2"
        assert vx.json()["predictions"] == ["v2"]
        missing = http.post(
            f"/endpoints/{ep.name}/predict", content=body, headers={"x-endpointkit-version": "v9"}
        )
        assert missing.status_code == 404
        assert "v9" in missing.json()["error"]
    with pytest.raises(NotFound, match="v9"):
        ep.predict([[1.0]], version="v9")


def test_sticky_sessions_stick(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.echo("v2"), traffic={"v1": 50, "v2": 50})
    url = f"{local.gateway_url()}/endpoints/{ep.name}/predict"
    seen: dict[str, set[str]] = {}
    with httpx.Client() as http:
        for session in ("alice", "bob", "carol", "dave", "erin", "frank"):
            for _ in range(5):
                answer = http.post(
                    url, content=b'{"instances": [1]}', headers={"x-endpointkit-session": session}
                )
                seen.setdefault(session, set()).add(answer.headers["x-endpointkit-version"])
    assert all(len(versions_seen) == 1 for versions_seen in seen.values())
    assert set().union(*seen.values()) == {"v1", "v2"}  # sessions spread over both


def test_shadow_gets_copies_and_never_answers(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.echo("v3"))
    ep.set_shadow("v3", 100, timeout=60)
    assert set(served(ep, 20)) == {"v1"}
    stats = local.gateway_status()["endpoints"][ep.name]["versions"]
    assert stats["v3"]["served"] == 0
    assert stats["v3"]["shadowed"] > 0  # copies reached the shadow's own process
    ep.set_shadow(None, timeout=60)
    before = local.gateway_status()["endpoints"][ep.name]["versions"]["v3"]["shadowed"]
    served(ep, 10)
    after = local.gateway_status()["endpoints"][ep.name]["versions"]["v3"]["shadowed"]
    assert after == before
    kinds = [e.kind for e in ep.history()]
    assert kinds.count("shadow") == 2


def test_version_processes_run_the_version_env(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    version = ep.status().version("v1")
    assert version is not None
    details = version.details
    assert details["healthy"] is True
    assert details["socket"]  # a Unix socket, not a port (test_faults: no way around the token)
    assert details["pid"]
    with httpx.Client(transport=httpx.HTTPTransport(uds=details["socket"])) as direct_client:
        direct = direct_client.post("http://version/invocations", json={"instances": [[1]]})
    assert direct.headers["x-endpointkit-version"] == "v1"
    assert direct.json() == {"predictions": ["v1"]}


def test_async_endpoint_uses_the_async_client(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    import asyncio

    from endpointkit import AsyncEndpoint

    ep = make_endpoint(versions.echo("v1"), versions.echo("v2"), traffic={"v1": 50, "v2": 50})

    async def run() -> set[str | None]:
        handle = AsyncEndpoint(ep.name, local)
        results = await asyncio.gather(*(handle.predict([[1.0]]) for _ in range(40)))
        state = await handle.status()  # control calls run in worker threads
        assert state.name == ep.name
        return {r.version for r in results}

    assert asyncio.run(run()) == {"v1", "v2"}


def test_plain_path_takes_curl_defaults(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"))
    url = f"{local.gateway_url()}/endpoints/{ep.name}/predict"
    form = {"content-type": "application/x-www-form-urlencoded", "expect": "100-continue"}
    answer = httpx.post(url, content=b'{"instances": [[1], [2]]}', headers=form)
    assert answer.json() == {"predictions": ["v1", "v1"]}
    assert httpx.get(url).status_code == 405
    assert httpx.post(f"{local.gateway_url()}/elsewhere").status_code == 404


def test_replicas_run_as_worker_processes(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    spec = versions.echo("v1").model_copy(update={"resources": Resources(min_replicas=2)})
    ep = make_endpoint(spec)
    state = ep.status().version("v1")
    assert state is not None
    assert state.replicas == 2
    assert {ep.predict([[1.0]]).version for _ in range(5)} == {"v1"}
