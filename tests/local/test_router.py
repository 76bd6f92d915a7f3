"""The gateway's routing table and token bucket, in process (no sockets are opened)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from endpointkit.adapters.local.gateway import NoRoute, Route, Router, TokenBucket


def route_with(router: Router, traffic: dict[str, int], healthy: set[str]) -> Route:
    route = router.route("ep")
    route.traffic = list(traffic.items())
    for version in traffic:
        upstream = route.upstream(version)
        upstream.set_port(1)  # a pool object only; nothing connects here
        upstream.healthy = version in healthy
    return route


def test_weighted_split_is_seeded_and_proportional() -> None:
    picks = []
    for _ in range(2):
        router = Router(seed=42)
        route = route_with(router, {"v1": 90, "v2": 10}, {"v1", "v2"})
        picks.append([router.pick(route, None, None).name for _ in range(1000)])
    assert picks[0] == picks[1]  # same seed, same sequence
    counts = Counter(picks[0])
    assert 820 < counts["v1"] < 970


def test_unhealthy_share_goes_to_the_rest_and_none_healthy_is_503() -> None:
    router = Router(seed=1)
    route = route_with(router, {"v1": 50, "v2": 30, "v3": 20}, {"v2", "v3"})
    counts = Counter(router.pick(route, None, None).name for _ in range(1000))
    assert set(counts) == {"v2", "v3"}
    assert counts["v2"] > counts["v3"]  # still 3:2 between the healthy ones
    for upstream in route.upstreams.values():
        upstream.healthy = False
    with pytest.raises(NoRoute) as caught:
        router.pick(route, None, None)
    assert caught.value.status == 503
    assert "no healthy version" in caught.value.message


def test_target_and_sticky() -> None:
    router = Router(seed=1)
    route = route_with(router, {"v1": 50, "v2": 50}, {"v1", "v2"})
    assert router.pick(route, "v2", None).name == "v2"
    with pytest.raises(NoRoute, match="v7"):
        router.pick(route, "v7", None)
    for key in (b"alice", b"bob", b"carol"):
        assert len({router.pick(route, None, key).name for _ in range(20)}) == 1
    empty = Router().route("idle")
    with pytest.raises(NoRoute, match="no traffic split"):
        Router().pick(empty, None, None)


def test_token_bucket_allows_burst_then_asks_to_wait() -> None:
    bucket = TokenBucket(rate=1.0, burst=3)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.take()
    assert 0 < wait <= 1.0
    bucket.last = time.monotonic() - 2.0  # two seconds pass
    assert bucket.take() == 0.0
