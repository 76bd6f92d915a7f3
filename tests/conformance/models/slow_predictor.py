"""A model that is slow to load: startup-timeout tests.

The model directory holds this file plus `answer.txt` (the name) and `load_seconds.txt` (how
long `load` sleeps). Once loaded it answers like echo_predictor: every prediction is the name.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


class Slow:
    def load(self, model_dir: str) -> None:
        root = Path(model_dir)
        time.sleep(float((root / "load_seconds.txt").read_text()))
        self.answer = (root / "answer.txt").read_text().strip()

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> list[Any]:
        return [self.answer for _ in instances]
