"""A model that refuses every request with a 422 (its exception's `status_code`), as a
validating model server does for a well-formed request it cannot process."""

from __future__ import annotations

from typing import Any


class Unprocessable(ValueError):
    status_code = 422


class Refuses:
    def load(self, model_dir: str) -> None:
        pass

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> list[Any]:
        raise Unprocessable("feature 'age' is missing (client test model)")
