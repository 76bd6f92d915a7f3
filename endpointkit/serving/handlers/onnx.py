"""ONNX models from ``model.onnx`` through ONNX Runtime (extra: ``onnx``)."""

from __future__ import annotations

from typing import Any

from ._util import first_file, require

_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


class OnnxPredictor:
    """Feeds instances to the model's single input (or a dict of inputs by name)."""

    def __init__(self) -> None:
        self.session: Any = None
        self.inputs: list[tuple[str, str]] = []
        self.outputs: list[str] = []
        self.input_shape: tuple[int | None, ...] | None = None

    def load(self, model_dir: str) -> None:
        """Open an InferenceSession, preferring CUDA when onnxruntime-gpu has it."""
        ort = require("onnxruntime", "onnx")
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self.session = ort.InferenceSession(
            str(first_file(model_dir, ("model.onnx",))), providers=providers or None
        )
        inputs = self.session.get_inputs()
        self.inputs = [(i.name, _DTYPES.get(i.type, "float32")) for i in inputs]
        self.outputs = [o.name for o in self.session.get_outputs()]
        if len(inputs) == 1 and inputs[0].shape:  # checked per request: 422 before the model
            dims = inputs[0].shape[1:]
            self.input_shape = tuple(d if isinstance(d, int) else None for d in dims)

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        """The first output, or a dict of outputs when the model has several."""
        import numpy as np

        if isinstance(instances, dict):
            feed = {name: np.asarray(instances[name], dtype=dt) for name, dt in self.inputs}
        else:
            name, dtype = self.inputs[0]
            feed = {name: np.asarray(instances, dtype=dtype)}
        try:
            results = self.session.run(None, feed)
        except Exception as exc:
            if type(exc).__name__ in ("InvalidArgument", "InvalidGraph"):  # bad input: 422
                raise ValueError(str(exc)) from exc
            raise
        if len(results) == 1:
            return results[0]
        return dict(zip(self.outputs, results, strict=False))
