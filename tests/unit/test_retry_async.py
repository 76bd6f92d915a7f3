"""`apoll_until`, the asyncio twin of the one polling policy: same delays, deadline and errors."""

from __future__ import annotations

import asyncio

import pytest

from endpointkit.errors import Timeout
from endpointkit.retry import apoll_until, poll_until
from tests.unit.test_retry import FakeTime as SyncFakeTime


class FakeTime(SyncFakeTime):
    """The sync tests' fake clock, with the coroutine sleep `apoll_until` takes."""

    async def nap(self, seconds: float) -> None:
        self.sleep(seconds)


def test_returns_the_first_result_that_is_done() -> None:
    time = FakeTime()
    values = iter([1, 2, 3, 4])

    async def fetch() -> int:
        return next(values)

    got = asyncio.run(
        apoll_until(
            fetch,
            lambda v: v >= 3,
            timeout=60,
            expired=lambda v: Timeout(f"last {v}"),
            first_s=0.5,
            sleep=time.nap,
            clock=time.clock,
        )
    )
    assert got == 3
    assert time.naps == [0.5, 1.0]  # exponential from first_s


def test_backoff_is_capped_and_never_overshoots_the_deadline() -> None:
    time = FakeTime()
    fetched: list[float] = []

    async def fetch() -> str:
        fetched.append(time.now)
        return "Updating"

    with pytest.raises(Timeout, match="still Updating"):
        asyncio.run(
            apoll_until(
                fetch,
                lambda status: status == "InService",
                timeout=20,
                expired=lambda status: Timeout(f"still {status}"),
                first_s=1,
                max_s=4,
                sleep=time.nap,
                clock=time.clock,
            )
        )
    assert time.naps == [1, 2, 4, 4, 4, 4, 1]  # capped at 4, the last one cut to the deadline
    assert fetched[-1] == 120.0  # one last look exactly at the deadline
    assert time.now == 120.0


def test_same_delays_as_the_sync_twin() -> None:
    sync_time, async_time = FakeTime(), FakeTime()

    async def fetch() -> bool:
        return False

    settings = {"timeout": 7, "expired": lambda _: Timeout("no"), "first_s": 0.25, "max_s": 2}
    with pytest.raises(Timeout):
        poll_until(lambda: False, bool, sleep=sync_time.sleep, clock=sync_time.clock, **settings)
    with pytest.raises(Timeout):
        asyncio.run(
            apoll_until(fetch, bool, sleep=async_time.nap, clock=async_time.clock, **settings)
        )
    assert async_time.naps == sync_time.naps == [0.25, 0.5, 1, 2, 2, 1.25]


def test_errors_from_fetch_propagate_at_once() -> None:
    time = FakeTime()

    async def fetch() -> int:
        raise KeyError("gone")

    with pytest.raises(KeyError):
        asyncio.run(
            apoll_until(
                fetch,
                bool,
                timeout=10,
                expired=lambda v: Timeout("no"),
                sleep=time.nap,
                clock=time.clock,
            )
        )
    assert time.naps == []


def test_fetch_may_be_any_callable_returning_an_awaitable() -> None:
    time = FakeTime()
    calls: list[int] = []

    async def check(n: int) -> int:
        calls.append(n)
        return len(calls)

    got = asyncio.run(
        apoll_until(
            lambda: check(7),  # a lambda, not an `async def`: still awaited
            lambda v: v == 2,
            timeout=10,
            expired=lambda v: Timeout("no"),
            first_s=0.1,
            sleep=time.nap,
            clock=time.clock,
        )
    )
    assert got == 2
    assert calls == [7, 7]


def test_real_sleep_and_clock_by_default() -> None:
    """Without injection it waits on the running loop (asyncio.sleep) and time.monotonic."""
    state = {"polls": 0}

    async def fetch() -> int:
        state["polls"] += 1
        return state["polls"]

    async def main() -> int:
        other = asyncio.create_task(asyncio.sleep(0))  # the loop stays free meanwhile
        got = await apoll_until(
            fetch, lambda v: v >= 3, timeout=5, expired=lambda _: Timeout("no"), first_s=0.001
        )
        assert other.done()
        return got

    assert asyncio.run(main()) == 3
