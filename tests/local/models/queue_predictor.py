"""A model for the queue tests: every call is logged, so a test can count deliveries.

Each instance is a string: its answer is `"done:<instance>"`. The call appends one line per
instance to `calls.log` in the model directory (`<instance> <start> <end>`), after sleeping
`sleep.txt` seconds. Instances starting with `fail` raise (a 500); `reject` is refused with a
400; `flaky-N-<id>` fails until it has been called N times.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


class Rejected(ValueError):
    status_code = 400


class Logged:
    def load(self, model_dir: str) -> None:
        self.root = Path(model_dir)
        sleep = self.root / "sleep.txt"
        self.sleep = float(sleep.read_text()) if sleep.exists() else 0.0

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> list[Any]:
        start = time.time()
        if self.sleep:
            time.sleep(self.sleep)
        lines = "".join(f"{item} {start:.6f} {time.time():.6f}\n" for item in instances)
        fd = os.open(self.root / "calls.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)
        for item in instances:
            text = str(item)
            if text.startswith("fail"):
                raise RuntimeError(f"failed on {text} (queue test)")
            if text == "reject":
                raise Rejected("this model rejects 'reject' (queue test)")
            if text.startswith("flaky-"):
                needed = int(text.split("-")[1])
                seen = (self.root / "calls.log").read_text().split().count(text)
                if seen < needed:
                    raise RuntimeError(f"flaky {text}: call {seen} of {needed}")
        return [f"done:{item}" for item in instances]
