"""The predictor the fault scenarios serve (copied into each model directory).

Each instance is answered with itself. Parameters: ``sleep`` (seconds, per call: 60 makes a
call that outlives any timeout, a hung predictor). With ``FAULTS_SEEN`` set, every call first
appends ``<pid> <instance>`` lines to that file, so a scenario can tell whether any request
reached a model twice (a replay).
"""

from __future__ import annotations

import os
import time
from typing import Any


class Model:
    def load(self, model_dir: str) -> None:
        self.seen = os.environ.get("FAULTS_SEEN")
        self.delay = float(os.environ.get("FAULTS_DELAY_S", "0"))

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        items = instances.tolist() if hasattr(instances, "tolist") else list(instances)
        if self.seen:
            with open(self.seen, "a") as log:
                log.write("".join(f"{os.getpid()} {item}\n" for item in items))
        sleep = float((parameters or {}).get("sleep", 0) or self.delay)
        if sleep:
            time.sleep(sleep)
        return items
