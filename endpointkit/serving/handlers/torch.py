"""TorchScript models from ``model.pt`` / ``model.pth`` (extra: ``torch``); GPU when present."""

from __future__ import annotations

from typing import Any

from ._util import first_file, require

FILES = ("model.pt", "model.pth", "model.torchscript")


class TorchScriptPredictor:
    """``model(tensor)`` under inference mode, float32 input, numpy output."""

    def __init__(self) -> None:
        self.model: Any = None
        self.device: Any = None

    def load(self, model_dir: str) -> None:
        """``torch.jit.load`` onto CUDA if available, else CPU (no pickle involved)."""
        torch = require("torch", "torch")
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = torch.jit.load(str(first_file(model_dir, FILES)), map_location=self.device)
        self.model.eval()

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        """One output row per instance."""
        import numpy as np
        import torch

        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(instances, dtype=np.float32), device=self.device)
            out = self.model(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.detach().cpu().numpy()
