"""Predictors the benchmark serves: the trivial row sum (unbatched and batched), and a model
with a fixed 2 ms cost per predict call (unbatched and batched)."""

from __future__ import annotations

import time
from typing import Any


class Sum:
    """``sum(row)`` per instance: pure serving overhead."""

    def load(self, model_dir: str) -> None:
        """Nothing to load."""

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        """One float per row."""
        return [float(sum(row)) for row in instances]


class SumInline(Sum):
    """The row sum on the event loop (a predictor's ``inline = True``): no model-thread hop,
    and no health check while it runs; for the benchmark's reference row."""

    inline = True


class SumBatched(Sum):
    """The row sum with dynamic batching on (opportunistic): what batching itself costs."""

    max_batch_size = 64
    max_latency_ms = 0.0


class Fixed2ms(Sum):
    """2 ms per call whatever the batch size (like a GPU launch or an RPC), then row sums."""

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        """Sleep 2 ms, then sum."""
        time.sleep(0.002)
        return [float(sum(row)) for row in instances]


class Fixed2msBatched(Fixed2ms):
    """The same model with dynamic batching on (opportunistic: no added delay)."""

    max_batch_size = 64
    max_latency_ms = 0.0


class TokenSum:
    """Sums each row of an integer array (a stand-in for a model fed token ids); runs inline,
    so a request's cost is the server's decoding and encoding, not the model-thread hop."""

    inline = True

    def load(self, model_dir: str) -> None:
        """Nothing to load."""

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        """One integer per row (lists become an array first)."""
        import numpy as np

        return np.asarray(instances).sum(axis=-1)


class TokenSumArrays(TokenSum):
    """TokenSum that takes numeric JSON instances as one array (``array_input``)."""

    array_input = True
