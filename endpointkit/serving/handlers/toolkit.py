"""SageMaker inference-toolkit scripts: ``code/inference.py`` with the toolkit's hooks.

Hooks (aws/sagemaker-inference-toolkit ``transformer.py``): ``model_fn(model_dir)``,
``input_fn(data, content_type)``, ``predict_fn(data, model)``, ``output_fn(prediction, accept)``,
or ``transform_fn(model, data, content_type, accept)`` instead of the last three; optional
``pre_model_fn(model_dir)`` and ``model_warmup_fn(model_dir, model)``. Each hook may take a
trailing ``context``. Defaults decode JSON, CSV and npy to numpy and encode JSON, CSV and npy, as
the toolkit's ``decoder``/``encoder`` do.

Headers as the toolkit passes them (``transformer.py`` ``transform``): ``input_fn`` gets the raw
Content-Type header (parameters kept; None when absent) and ``output_fn`` the raw Accept header
(a missing or ``*/*`` Accept becomes ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``); the body reaches
``input_fn`` as ``str`` only when the Content-Type is exactly ``application/json`` or
``text/csv`` (``content_types.UTF8_TYPES``), else as bytes. Deliberately more lenient than the
toolkit, where it would fail: the default ``input_fn``/``output_fn`` ignore media-type
parameters and take ``*/*`` inside an Accept list as JSON; a result without a content type is
sent with the first type of a comma-separated Accept, not the whole list.

Errors (``transformer.py``): an exception with a ``status_code`` (the toolkit's
``BaseInferenceToolkitError``) sets the HTTP status; any other exception from the script is a
500 (see ``_util.user_code_error``).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from ..predictor import PredictorLoadError
from ._util import user_code_error

_TEXT_TYPES = ("application/json", "text/csv")  # content_types.UTF8_TYPES: exact matches
_ENCODED = ("application/json", "text/csv", "application/x-npy")


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


def _media(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def default_input_fn(data: Any, content_type: str | None) -> Any:
    """The toolkit's default decoder: JSON, CSV, npy -> numpy (no Content-Type: JSON)."""
    import io

    import numpy as np

    mtype = _media(content_type) or "application/json"
    if mtype in _TEXT_TYPES and isinstance(data, bytes):
        data = data.decode("utf-8")
    if mtype == "application/json":
        import orjson

        return np.array(orjson.loads(data))
    if mtype == "text/csv":
        return np.genfromtxt(io.StringIO(data), delimiter=",", dtype=np.float64)
    if mtype == "application/x-npy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    from ..errors import UnsupportedMediaType

    raise UnsupportedMediaType(f"Content type {content_type!r} is not supported by input_fn")


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    """The toolkit's default encoder: the first supported type of the Accept list."""
    from .. import codecs

    for item in accept.split(","):
        mtype = _media(item)
        if mtype == "*/*":
            mtype = "application/json"
        if mtype in _ENCODED:
            return codecs.encode(prediction, mtype), mtype
    from ..errors import NotAcceptable

    raise NotAcceptable(f"Accept {accept!r} is not supported by output_fn")


class ToolkitPredictor:
    """Runs a toolkit script; ``handle_raw`` serves ``/invocations`` the way the toolkit does."""

    def __init__(self, script: Path) -> None:
        self.script = script
        self.module: Any = None
        self.model: Any = None
        self.model_dir = ""

    @property
    def vertex_raw(self) -> bool:
        """Whether the script reads the body itself (``input_fn``, ``output_fn`` or
        ``transform_fn``): then the Vertex predict route hands it the body verbatim."""
        return any(hasattr(self.module, h) for h in ("input_fn", "output_fn", "transform_fn"))

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
        try:
            return self._predict(instances)
        except Exception as exc:
            raise user_code_error(exc) from exc

    def _predict(self, instances: Any) -> Any:
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
        self, body: bytes, content_type: str | None, accept: str, attributes: str | None
    ) -> tuple[bytes, str]:
        """The toolkit's ``transform``: body bytes in, (bytes, content type) out.

        ``content_type`` and ``accept`` are the raw headers (see the module docstring)."""
        data: Any = body.decode("utf-8") if content_type in _TEXT_TYPES else body
        try:
            result = self._transform(data, content_type, accept, attributes)
        except Exception as exc:
            raise user_code_error(exc) from exc
        if isinstance(result, tuple):
            payload, rtype = result[0], str(result[1])
        else:
            payload, rtype = result, accept.split(",", 1)[0].split(";", 1)[0].strip()
        if isinstance(payload, str):
            payload = payload.encode()
        return bytes(payload), rtype

    def _transform(
        self, data: Any, content_type: str | None, accept: str, attributes: str | None
    ) -> Any:
        module = self.module
        ctx = ToolkitContext(self.model_dir, attributes)
        if hasattr(module, "transform_fn"):
            return _call(module.transform_fn, (self.model, data, content_type, accept), ctx)
        input_fn = getattr(module, "input_fn", default_input_fn)
        output_fn = getattr(module, "output_fn", default_output_fn)
        decoded = _call(input_fn, (data, content_type), ctx)
        prediction = _call(module.predict_fn, (decoded, self.model), ctx)
        return _call(output_fn, (prediction, accept), ctx)
