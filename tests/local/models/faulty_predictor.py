"""A model for the local backend's fault tests: each instance says how to misbehave.

`"die"` ends the process at once (a query of death) after touching `died-<pid>` in the model
directory; `"sleep:S"` answers after S seconds; `"busy"` answers 503 with Retry-After, as a
server over its in-flight limit does; `"throttled"` answers 429; anything else is answered
with the version's name (`answer.txt`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from endpointkit.serving.errors import Overloaded


class Throttled(RuntimeError):
    status_code = 429


class Faulty:
    def load(self, model_dir: str) -> None:
        self.root = Path(model_dir)
        self.answer = (self.root / "answer.txt").read_text().strip()

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> list[Any]:
        for item in instances:
            if item == "die":
                (self.root / f"died-{os.getpid()}").touch()
                os._exit(3)
            if item == "busy":
                raise Overloaded("busy (fault test)", headers=[(b"retry-after", b"7")])
            if item == "throttled":
                raise Throttled("slow down (fault test)")
            if isinstance(item, str) and item.startswith("sleep:"):
                time.sleep(float(item.partition(":")[2]))
        return [self.answer for _ in instances]
