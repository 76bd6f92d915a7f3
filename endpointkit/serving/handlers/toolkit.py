"""SageMaker inference-toolkit scripts: ``code/inference.py`` with the toolkit's hooks.

Hooks (aws/sagemaker-inference-toolkit ``transformer.py``): ``model_fn(model_dir)``,
``input_fn(data, content_type)``, ``predict_fn(data, model)``, ``output_fn(prediction, accept)``,
or ``transform_fn(model, data, content_type, accept)`` instead of the last three; optional
``pre_model_fn(model_dir)`` and ``model_warmup_fn(model_dir, model)``. Each hook may take a
trailing ``context``. Defaults decode JSON, CSV and npy to numpy and encode JSON, CSV and npy, as
the toolkit's ``decoder``/``encoder`` do; JSON and CSV bodies reach ``input_fn`` as ``str``.
An exception with a ``status_code`` attribute (the toolkit's ``BaseInferenceToolkitError``)
sets the HTTP status.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from ..predictor import PredictorLoadError

_TEXT_TYPES = ("application/json", "text/csv")


class ToolkitContext:
    """The subset of MMS's ``Context`` that toolkit scripts read."""

    def __init__(self, model_dir: str, custom_attributes: str | None = None) -> None:
        self.system_properties = {"model_dir": model_dir, "gpu_id": 0}
        self.model_name = "model"
        self.custom_attributes = custom_attributes
        self.request_processor = None


def _call(fn: Any, args: tuple[Any, ...], context: ToolkitContext) -> Any:
    """Call a hook with ``context`` appended when its arity asks for it."""
    try:
        n = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        n = len(args)
    return fn(*args, context) if n > len(args) else fn(*args)


def default_input_fn(data: Any, content_type: str) -> Any:
    """The toolkit's default decoder: JSON, CSV, npy -> numpy."""
    import io

    import numpy as np

    if content_type == "application/json":
        import orjson

        return np.array(orjson.loads(data))
    if content_type == "text/csv":
        return np.genfromtxt(io.StringIO(data), delimiter=",", dtype=np.float64)
    if content_type == "application/x-npy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    from ..errors import UnsupportedMediaType

    raise UnsupportedMediaType(f"Content type {content_type!r} is not supported by input_fn")


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    """The toolkit's default encoder: numpy or lists -> JSON, CSV, npy."""
    from .. import codecs

    if accept not in ("application/json", "text/csv", "application/x-npy"):
        from ..errors import NotAcceptable

        raise NotAcceptable(f"Accept {accept!r} is not supported by output_fn")
    return codecs.encode(prediction, accept), accept


class ToolkitPredictor:
    """Runs a toolkit script; ``handle_raw`` serves ``/invocations`` the way the toolkit does."""

    def __init__(self, script: Path) -> None:
        self.script = script
        self.module: Any = None
        self.model: Any = None
        self.model_dir = ""

    def load(self, model_dir: str) -> None:
        """Import the script (its folder on sys.path), then ``model_fn``."""
        code_dir = str(self.script.parent)
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)
        spec = importlib.util.spec_from_file_location(
            f"endpointkit_user_{self.script.stem}", self.script
        )
        if spec is None or spec.loader is None:
            raise PredictorLoadError(f"Cannot import {self.script}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.module = module
        has_transform = hasattr(module, "transform_fn")
        if has_transform and any(
            hasattr(module, h) for h in ("input_fn", "predict_fn", "output_fn")
        ):
            raise PredictorLoadError(
                f"{self.script}: transform_fn cannot be combined with input_fn, predict_fn or "
                f"output_fn (same rule as the SageMaker inference toolkit)"
            )
        if not has_transform and not hasattr(module, "predict_fn"):
            raise PredictorLoadError(f"{self.script} must define predict_fn or transform_fn")
        if not hasattr(module, "model_fn"):
            raise PredictorLoadError(f"{self.script} must define model_fn(model_dir)")
        self.model_dir = model_dir
        ctx = ToolkitContext(model_dir)
        if hasattr(module, "pre_model_fn"):
            _call(module.pre_model_fn, (model_dir,), ctx)
        self.model = _call(module.model_fn, (model_dir,), ctx)
        if hasattr(module, "model_warmup_fn"):
            _call(module.model_warmup_fn, (model_dir, self.model), ctx)

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        """``predict_fn(instances, model)`` (Vertex and OIP routes, and the mock backend)."""
        module = self.module
        ctx = ToolkitContext(self.model_dir)
        if hasattr(module, "predict_fn"):
            return _call(module.predict_fn, (instances, self.model), ctx)
        import orjson

        from .. import codecs

        out = _call(
            module.transform_fn,
            (
                self.model,
                codecs.dumps_json(instances).decode(),
                "application/json",
                "application/json",
            ),
            ctx,
        )
        body = out[0] if isinstance(out, tuple) else out
        return orjson.loads(body)

    def handle_raw(
        self, body: bytes, content_type: str, accept: str, attributes: str | None
    ) -> tuple[bytes, str]:
        """The toolkit's ``transform``: body bytes in, (bytes, content type) out."""
        module = self.module
        ctx = ToolkitContext(self.model_dir, attributes)
        data: Any = body
        if content_type in _TEXT_TYPES:
            data = body.decode("utf-8")
        if hasattr(module, "transform_fn"):
            result = _call(module.transform_fn, (self.model, data, content_type, accept), ctx)
        else:
            input_fn = getattr(module, "input_fn", default_input_fn)
            output_fn = getattr(module, "output_fn", default_output_fn)
            decoded = _call(input_fn, (data, content_type), ctx)
            prediction = _call(module.predict_fn, (decoded, self.model), ctx)
            result = _call(output_fn, (prediction, accept), ctx)
        if isinstance(result, tuple):
            payload, rtype = result[0], str(result[1])
        else:
            payload, rtype = result, accept
        if isinstance(payload, str):
            payload = payload.encode()
        return bytes(payload), rtype
