"""A predictor that answers every instance with itself (shows how numbers travel)."""

from __future__ import annotations

from typing import Any


class Identity:
    def load(self, model_dir: str) -> None:
        self.model_dir = model_dir

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> list[Any]:
        return list(instances)
