"""A tiny model for the conformance suite: every prediction is the version's own name.

The model directory holds this file plus `answer.txt` (the name) and `mode.txt`:
`echo` answers, `reject` raises `Rejected` on every request (a 4xx model error whose message
reaches the client, as an exception with a 4xx `status_code` does on the server), `broken`
fails to load (the deployment fails). `predict_stream` streams one item per instance.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Rejected(ValueError):
    """A refusal written for the client: the server passes a 4xx `status_code`'s message on
    (other exceptions' text stays in the server log)."""

    status_code = 400


class Echo:
    def load(self, model_dir: str) -> None:
        root = Path(model_dir)
        self.mode = (root / "mode.txt").read_text().strip()
        if self.mode == "broken":
            raise RuntimeError("cannot load weights: model.bin is corrupt (conformance test)")
        self.answer = (root / "answer.txt").read_text().strip()

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> list[Any]:
        if self.mode == "reject":
            raise Rejected("this version rejects every input (conformance test)")
        return [self.answer for _ in instances]

    def predict_stream(
        self, instances: Any, parameters: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """One item per instance, `gap_s` seconds apart (a parameter); the instance "boom"
        fails mid-stream."""
        if self.mode == "reject":
            raise Rejected("this version rejects every input (conformance test)")
        gap = float((parameters or {}).get("gap_s", 0.0))
        for index, item in enumerate(instances):
            if index and gap:
                time.sleep(gap)
            if item == "boom":
                raise RuntimeError("exploded while streaming (conformance test)")
            yield {"index": index, "prediction": self.answer}
