"""The one polling policy: deadlines, backoff and injected sleep and clock."""

from __future__ import annotations

import pytest

from endpointkit.adapters.mock import MockBackend
from endpointkit.errors import Timeout
from endpointkit.retry import poll_until
from endpointkit.spec import VersionSpec
from endpointkit.state import Status


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.naps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += seconds


def test_returns_the_first_result_that_is_done() -> None:
    time = FakeTime()
    values = iter([1, 2, 3, 4])
    got = poll_until(
        lambda: next(values),
        lambda v: v >= 3,
        timeout=60,
        expired=lambda v: Timeout(f"last {v}"),
        first_s=0.5,
        sleep=time.sleep,
        clock=time.clock,
    )
    assert got == 3
    assert time.naps == [0.5, 1.0]  # exponential from first_s


def test_backoff_is_capped_and_never_overshoots_the_deadline() -> None:
    time = FakeTime()
    fetched: list[float] = []

    def fetch() -> str:
        fetched.append(time.now)
        return "Updating"

    with pytest.raises(Timeout, match="still Updating"):
        poll_until(
            fetch,
            lambda status: status == "InService",
            timeout=20,
            expired=lambda status: Timeout(f"still {status}"),
            first_s=1,
            max_s=4,
            sleep=time.sleep,
            clock=time.clock,
        )
    assert time.naps == [1, 2, 4, 4, 4, 4, 1]  # capped at 4, the last one cut to the deadline
    assert fetched[-1] == 120.0  # one last look exactly at the deadline
    assert time.now == 120.0


def test_errors_from_fetch_propagate_at_once() -> None:
    time = FakeTime()

    def fetch() -> int:
        raise KeyError("gone")

    with pytest.raises(KeyError):
        poll_until(
            fetch,
            bool,
            timeout=10,
            expired=lambda v: Timeout("no"),
            sleep=time.sleep,
            clock=time.clock,
        )
    assert time.naps == []


def test_backend_wait_uses_the_policy_with_the_backends_clock() -> None:
    time = FakeTime()
    backend = MockBackend(transition_polls=1000, predictors={"v1": lambda xs: xs})
    backend.sleep, backend.clock = time.sleep, time.clock
    backend.poll_first_s, backend.poll_max_s = 2.0, 8.0
    backend.create("slow", VersionSpec(name="v1"))
    with pytest.raises(Timeout, match="still Creating after 30 s") as info:
        backend.wait("slow", timeout=30)
    assert info.value.last_status == str(Status.CREATING)
    assert time.naps == [2, 4, 8, 8, 8]
    assert time.now == 130.0
