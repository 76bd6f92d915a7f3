"""Traffic splits: integer percentages per version, and the one place where weights become
percentages (largest-remainder rounding, so shares always sum to exactly 100).

SageMaker speaks relative float weights, Vertex AI integer percentages keyed by deployed model;
both convert through `TrafficSplit.from_weights` / `to_weights` here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Annotated

from pydantic import ConfigDict, Field, RootModel, model_validator

from endpointkit.errors import ValidationError

__all__ = ["TrafficSplit", "largest_remainder"]


def largest_remainder(values: Mapping[str, float], total: int = 100) -> dict[str, int]:
    """Integers proportional to `values` that sum to exactly `total` (Hamilton's method).

    Each key gets the floor of its exact share; the units left over go to the largest
    remainders, ties broken by name so the result is deterministic. All-zero input gives all
    zeros (the caller decides what an empty split means).
    """
    for key, value in values.items():
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"weight of {key!r} must be a finite number >= 0, got {value!r}")
    weight_sum = math.fsum(values.values())
    if weight_sum == 0:
        return dict.fromkeys(values, 0)
    exact = {key: value * total / weight_sum for key, value in values.items()}
    floors = {key: math.floor(share) for key, share in exact.items()}
    left = total - sum(floors.values())
    by_remainder = sorted(exact, key=lambda key: (-(exact[key] - floors[key]), key))
    for key in by_remainder[:left]:
        floors[key] += 1
    return floors


class TrafficSplit(RootModel[dict[str, int]]):
    """Integer percentages per version that sum to 100, or empty (no traffic).

    The single place where SageMaker's relative float weights and Vertex AI's integer
    percentages are converted, both with largest-remainder rounding.
    """

    root: dict[str, Annotated[int, Field(ge=0, le=100)]] = Field(default_factory=dict)
    model_config = ConfigDict(frozen=True)

    @model_validator(mode="after")
    def _sums_to_100(self) -> TrafficSplit:
        total = sum(self.root.values())
        if self.root and total != 100:
            shares = ", ".join(f"{k}={v}" for k, v in self.root.items())
            raise ValueError(
                f"traffic percentages must sum to 100 (or be empty for no traffic); "
                f"{shares} sums to {total}"
            )
        return self

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self.root)

    def __getitem__(self, version: str) -> int:
        return self.root.get(version, 0)

    def __len__(self) -> int:
        return len(self.root)

    def __bool__(self) -> bool:
        return any(self.root.values())

    def items(self) -> Iterator[tuple[str, int]]:
        return iter(self.root.items())

    def serving(self) -> dict[str, int]:
        """Versions with a share above zero."""
        return {k: v for k, v in self.root.items() if v > 0}

    def same_as(self, other: TrafficSplit | Mapping[str, int]) -> bool:
        """Equal shares, ignoring versions listed at 0%."""
        other_split = other if isinstance(other, TrafficSplit) else TrafficSplit(dict(other))
        return self.serving() == other_split.serving()

    @classmethod
    def from_weights(cls, weights: Mapping[str, float]) -> TrafficSplit:
        """From relative weights (SageMaker's float weights, or any proportions)."""
        shares = largest_remainder(weights)
        return cls(shares if any(shares.values()) else {})

    def to_weights(self) -> dict[str, float]:
        """SageMaker variant weights (relative floats); versions at 0% get weight 0.0."""
        return {version: float(share) for version, share in self.root.items()}

    def with_share(self, version: str, percent: int) -> TrafficSplit:
        """Give `version` exactly `percent`; the others keep their proportions of the rest."""
        if not 0 <= percent <= 100:
            raise ValidationError(f"traffic for {version!r} must be 0-100, got {percent}")
        others = {k: float(v) for k, v in self.root.items() if k != version}
        if percent == 100:
            return TrafficSplit({**dict.fromkeys(others, 0), version: 100})
        if not any(others.values()):
            if not self.root:  # no traffic anywhere: a new version at 0% changes nothing
                return TrafficSplit({})
            # `version` serves everything (a split sums to 100): nobody can take it over
            raise ValidationError(
                f"cannot give {version!r} {percent}%: no other version serves traffic to take "
                "the rest.",
                hint="Deploy it with traffic=100, or shift traffic to another version first.",
                version=version,
            )
        rest = largest_remainder(others, 100 - percent)
        return TrafficSplit({**rest, version: percent})

    def without(self, version: str) -> TrafficSplit:
        """Remove `version`; its share goes to the other serving versions in proportion."""
        share = self[version]
        others = {k: v for k, v in self.root.items() if k != version}
        if share == 0:
            return TrafficSplit(others if any(others.values()) else {})
        if not any(others.values()):
            if not others:
                return TrafficSplit({})
            raise ValidationError(
                f"version {version!r} serves all traffic and no other version serves any.",
                hint="Shift traffic to the version that should take over first "
                "(e.g. 'endpointkit traffic NAME v2=100').",
                version=version,
            )
        return TrafficSplit(largest_remainder({k: float(v) for k, v in others.items()}))

    def restricted_to(self, versions: set[str]) -> TrafficSplit:
        """Drop unknown versions, redistributing their shares (used for health-based routing)."""
        kept = {k: float(v) for k, v in self.root.items() if k in versions}
        return TrafficSplit.from_weights(kept)
