"""Traffic arithmetic: largest-remainder conversion between weights and percentages."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from endpointkit.errors import ValidationError
from endpointkit.spec import TrafficSplit, largest_remainder

names = st.text(alphabet="abcdefghij", min_size=1, max_size=6)
weights = st.dictionaries(
    names, st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=10
)


@st.composite
def splits(draw: st.DrawFn, min_size: int = 1, max_size: int = 10) -> dict[str, int]:
    """Valid traffic splits: distinct versions with integer shares (0 allowed) summing to
    exactly 100, made by cutting 0..100 at len(versions) - 1 drawn points."""
    versions = draw(st.lists(names, min_size=min_size, max_size=max_size, unique=True))
    cuts = st.integers(0, 100)
    points = sorted(draw(st.lists(cuts, min_size=len(versions) - 1, max_size=len(versions) - 1)))
    bounds = [0, *points, 100]
    return {
        version: high - low
        for version, low, high in zip(versions, bounds[:-1], bounds[1:], strict=True)
    }


@given(weights)
def test_largest_remainder_sums_exactly_and_stays_within_one(values: dict[str, float]) -> None:
    shares = largest_remainder(values)
    total = math.fsum(values.values())
    if total == 0:
        assert set(shares.values()) == {0}
        return
    assert sum(shares.values()) == 100
    for key, value in values.items():
        exact = value * 100 / total
        assert math.floor(exact) <= shares[key] <= math.ceil(exact)


@given(weights)
def test_largest_remainder_is_deterministic_and_order_independent(values: dict[str, float]) -> None:
    reversed_values = dict(reversed(list(values.items())))
    assert largest_remainder(values) == largest_remainder(reversed_values)


@given(weights)
def test_from_weights_round_trips_through_sagemaker_weights(values: dict[str, float]) -> None:
    split = TrafficSplit.from_weights(values)
    if not split:
        assert split.root == {}
        return
    # Percentages written as SageMaker weights read back as the same percentages.
    assert TrafficSplit.from_weights(split.to_weights()) == split


@given(splits())
def test_integer_percentages_summing_to_100_are_kept_verbatim(values: dict[str, int]) -> None:
    assert sum(values.values()) == 100  # the strategy draws valid splits only
    assert TrafficSplit.from_weights(values).root == values
    assert TrafficSplit(values).root == values


@given(st.data())
def test_with_share_gives_exact_percent_and_keeps_proportions(data: st.DataObject) -> None:
    values = data.draw(splits(), label="values")
    version = data.draw(st.one_of(st.sampled_from(sorted(values)), names), label="version")
    percent = data.draw(st.integers(0, 100), label="percent")
    split = TrafficSplit(values)
    others = {k: v for k, v in values.items() if k != version and v > 0}
    if not others and percent < 100:
        # `version` serves everything, so no other version can take the rest.
        with pytest.raises(ValidationError, match="no other version serves traffic"):
            split.with_share(version, percent)
        return
    result = split.with_share(version, percent)
    assert result[version] == percent
    assert sum(result.root.values()) == 100
    assert set(result.root) == {*values, version}
    rest = 100 - percent
    total_others = sum(others.values())
    for key, share in others.items():
        exact = share * rest / total_others
        assert math.floor(exact) <= result[key] <= math.ceil(exact)


def test_with_share_zero_for_the_only_serving_version() -> None:
    """Reachable as Endpoint.deploy(v1, traffic=0) while v1 serves everything."""
    with pytest.raises(ValidationError, match="no other version serves traffic"):
        TrafficSplit({"v1": 100}).with_share("v1", 0)


@given(st.data())
def test_without_moves_the_share_to_the_others(data: st.DataObject) -> None:
    values = data.draw(splits(min_size=2), label="values")
    version = data.draw(st.sampled_from(sorted(values)), label="version")
    split = TrafficSplit(values)
    if values[version] == 100:
        with pytest.raises(ValidationError, match="serves all traffic"):
            split.without(version)
        return
    result = split.without(version)
    others = {k: v for k, v in values.items() if k != version}
    assert set(result.root) == set(others)
    assert sum(result.root.values()) == 100
    for key, share in others.items():
        exact = share * 100 / (100 - values[version])
        assert math.floor(exact) <= result[key] <= math.ceil(exact)


def test_known_values() -> None:
    assert largest_remainder({"a": 1, "b": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert TrafficSplit.from_weights({"v1": 2.0, "v2": 1.0}).root == {"v1": 67, "v2": 33}
    assert TrafficSplit.from_weights({"v1": 0.0, "v2": 0.0}).root == {}
    assert TrafficSplit({"v1": 90, "v2": 10}).to_weights() == {"v1": 90.0, "v2": 10.0}
    split = TrafficSplit({"v1": 60, "v2": 40})
    assert split.with_share("v3", 10).root == {"v1": 54, "v2": 36, "v3": 10}
    assert split.with_share("v3", 100).root == {"v1": 0, "v2": 0, "v3": 100}
    assert split.without("v1").root == {"v2": 100}


def test_without_refuses_to_strand_traffic() -> None:
    with pytest.raises(ValidationError, match="serves all traffic"):
        TrafficSplit({"v1": 100, "v2": 0}).without("v1")
    assert TrafficSplit({"v1": 100}).without("v1").root == {}


def test_invalid_weights_are_rejected() -> None:
    with pytest.raises(ValueError, match="finite number"):
        largest_remainder({"a": float("nan")})
    with pytest.raises(ValueError, match="finite number"):
        largest_remainder({"a": -1.0})
