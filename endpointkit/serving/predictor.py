"""The Predictor protocol and how a model directory becomes a loaded Predictor.

Importable with only pydantic installed: the server stack (uvicorn, orjson, numpy) and every
framework are imported lazily, so the in-process mock backend can call :func:`load_predictor`.

Loading order (first match wins):

1. an explicit ``module:Class`` (the ``predictor`` argument, else ``ENDPOINTKIT_PREDICTOR``),
   imported with the model directory and its ``code/`` folder on ``sys.path``;
2. a SageMaker inference-toolkit script: ``$SAGEMAKER_PROGRAM`` in ``$SAGEMAKER_SUBMIT_DIRECTORY``
   (a folder or a ``sourcedir.tar.gz``, local or ``s3://``) or in ``code/``, else
   ``code/inference.py``; a configured script that cannot be found is a load error;
3. a Vertex AI Custom Prediction Routine class in ``predictor.py`` (or ``code/predictor.py``);
4. a built-in handler detected from the artifact: ``model.joblib``/``model.pkl`` (scikit-learn),
   ``model.json``/``model.ubj``/``model.bst`` (XGBoost), ``model.onnx`` (ONNX Runtime),
   ``model.pt``/``model.pth`` (TorchScript).

``code/requirements.txt`` is pip-installed first, for a script or predictor class (see
``requirements.py``).

Security: ``model.joblib``/``model.pkl`` are pickles and ``code/*.py`` is Python; loading either
runs code from the model directory. Serve only artifacts you trust.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Predictor(Protocol):
    """What the server runs. Only ``load`` and ``predict`` are required.

    Optional members, read with ``getattr`` (see :class:`PredictorOptions`):

    - ``preprocess(instances) -> instances`` and ``postprocess(predictions) -> predictions``:
      run once per request, outside the batch;
    - ``content_types`` / ``accept_types``: extra request / response media types, with
      ``decode(body: bytes, content_type: str) -> instances`` and
      ``encode(predictions, accept: str) -> bytes``;
    - ``max_batch_size`` and ``max_latency_ms``: opt into dynamic batching;
    - ``input_schema``: a pydantic model class or a JSON Schema dict, checked per instance;
    - ``input_shape``: the shape of one instance for array inputs, ``None`` for any size;
    - ``array_input = True``: JSON instances that are all numbers (or equal-length rows of
      numbers) reach ``predict`` as one numpy array (``numpy.asarray`` once, while decoding)
      instead of Python lists; anything else still arrives as lists;
    - ``inline = True``: your predict runs on the event loop: health and timeouts wait for
      it; only for calls of a few microseconds. Otherwise (the default) it runs on the model
      thread, and the server never moves it onto the loop by itself;
    - ``handle_raw(body, content_type, accept, attributes) -> (bytes, content_type)``: takes over
      SageMaker ``/invocations`` bodies verbatim (used by inference-toolkit scripts);
    - ``predict_stream(instances, parameters)``: a generator or async generator whose items are
      streamed to clients that ask for a stream (see ``streaming.py``): bytes and str as they
      are, anything else as JSON. Without it a stream carries the full answer as one chunk.
    """

    def load(self, model_dir: str) -> None:
        """Load the model from ``model_dir``; called once before any request."""

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        """Return one prediction per instance, in order."""


class PredictorLoadError(ValueError):
    """The model directory cannot become a Predictor; the message says what to do."""


class MissingExtraError(ImportError):
    """A handler needs a package that is not installed; the message names the extra."""


@dataclass(frozen=True)
class PredictorOptions:
    """The optional members of a predictor, resolved once."""

    max_batch_size: int = 1
    max_latency_ms: float = 0.0
    content_types: tuple[str, ...] = ()
    accept_types: tuple[str, ...] = ()
    inline: bool | None = None
    input_shape: tuple[int | None, ...] | None = None
    has_preprocess: bool = False
    has_postprocess: bool = False
    has_raw: bool = False
    has_stream: bool = False
    array_input: bool = False

    @classmethod
    def of(cls, predictor: Any) -> PredictorOptions:
        """Read the optional members of ``predictor``."""
        shape = getattr(predictor, "input_shape", None)
        inline = getattr(predictor, "inline", None)
        return cls(
            max_batch_size=max(1, int(getattr(predictor, "max_batch_size", 1) or 1)),
            max_latency_ms=float(getattr(predictor, "max_latency_ms", 0.0) or 0.0),
            content_types=tuple(t.lower() for t in getattr(predictor, "content_types", ()) or ()),
            accept_types=tuple(t.lower() for t in getattr(predictor, "accept_types", ()) or ()),
            inline=None if inline is None else bool(inline),
            input_shape=None if shape is None else tuple(shape),
            has_preprocess=callable(getattr(predictor, "preprocess", None)),
            has_postprocess=callable(getattr(predictor, "postprocess", None)),
            has_raw=callable(getattr(predictor, "handle_raw", None)),
            has_stream=callable(getattr(predictor, "predict_stream", None)),
            array_input=getattr(predictor, "array_input", False) is True,
        )


# artifact file -> (handler "module:Class", extra, pip requirement)
BUILTINS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (
        ("model.joblib", "model.pkl", "model.pickle"),
        "endpointkit.serving.handlers.sklearn:SklearnPredictor",
        "sklearn",
    ),
    (
        ("model.ubj", "model.bst", "model.xgb", "model.json"),
        "endpointkit.serving.handlers.xgboost:XGBoostPredictor",
        "xgboost",
    ),
    (("model.onnx",), "endpointkit.serving.handlers.onnx:OnnxPredictor", "onnx"),
    (
        ("model.pt", "model.pth", "model.torchscript"),
        "endpointkit.serving.handlers.torch:TorchScriptPredictor",
        "torch",
    ),
)


def import_object(target: str, *, search: list[str] | None = None) -> Any:
    """Import ``"module:attr"`` (``search`` folders first on sys.path); raise PredictorLoadError."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise PredictorLoadError(
            f"Predictor {target!r} must look like 'module:Class', e.g. 'my_model:MyPredictor'"
        )
    for folder in reversed(search or []):
        if folder not in sys.path and os.path.isdir(folder):
            sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise PredictorLoadError(
                f"Cannot import module {module_name!r} for predictor {target!r}: put it in the "
                f"model directory, its code/ folder, or install it"
            ) from exc
        raise
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PredictorLoadError(
                f"Module {module_name!r} has no attribute {attr!r} (predictor {target!r})"
            ) from None
    return obj


def _takes_parameters(predict: Any) -> bool:
    try:
        params = list(inspect.signature(predict).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature
        return True
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return len(positional) >= 2 or any(p.name == "parameters" for p in params)


def _instantiate(obj: Any, target: str) -> Any:
    """Class -> instance; an instance is used as is. CPR-style classes get the CPR adapter."""
    if not callable(getattr(obj, "predict", None)) or not callable(getattr(obj, "load", None)):
        raise PredictorLoadError(
            f"{target} must define load(model_dir) and predict(instances, parameters=None)"
        )
    instance: Any = obj() if inspect.isclass(obj) else obj
    predict = instance.predict
    if _takes_parameters(predict):
        return instance
    from .handlers.cpr import CprAdapter

    return CprAdapter(instance)


def _find_cpr_class(path: Path, env: Mapping[str, str]) -> str:
    """Name ``module:Class`` of the CPR predictor class defined in ``path``."""
    wanted = env.get("PREDICTOR_CLASS")
    if wanted:
        return f"{path.stem}:{wanted}"
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and {"load", "predict"}
        <= {f.name for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
    ]
    if len(found) != 1:
        raise PredictorLoadError(
            f"{path} must define exactly one class with load() and predict() "
            f"(found {found or 'none'}); or set PREDICTOR_CLASS"
        )
    return f"{path.stem}:{found[0]}"


def fetch_artifacts(uri: str, env: Mapping[str, str] | None = None) -> str:
    """Return a local directory for ``uri``: a path, ``file://``, ``s3://`` or ``gs://``.

    Cloud URIs are downloaded into a temporary directory with boto3 / google-cloud-storage,
    imported only here; a missing package raises MissingExtraError naming the extra. A single
    ``model.tar.gz`` is unpacked within the caps of ``ArchiveLimits.from_env(env)``.
    """
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if uri.startswith(("s3://", "gs://")):
        from .handlers.fetch import fetch_gcs, fetch_s3
        from .settings import ArchiveLimits

        limits = ArchiveLimits.from_env(os.environ if env is None else env)
        return fetch_s3(uri, limits) if uri.startswith("s3://") else fetch_gcs(uri, limits)
    return uri


def _configured_script(code: Path, env: Mapping[str, str]) -> Path | None:
    """The script named by ``SAGEMAKER_PROGRAM`` / ``SAGEMAKER_SUBMIT_DIRECTORY``, or None when
    neither is set; PredictorLoadError when it cannot be found.

    The SageMaker SDK leaves the code outside the model archive unless it repacks it: the
    folder or ``sourcedir.tar.gz`` in ``SAGEMAKER_SUBMIT_DIRECTORY`` (sagemaker-containers
    ``_modules.download_and_install``); without it the program is looked up in ``code/``.
    ``SAGEMAKER_PROGRAM`` may omit ``.py`` (toolkit ``environment.py``)."""
    program = env.get("SAGEMAKER_PROGRAM") or ""
    submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY") or ""
    if not program and not submit:
        return None
    if program and not program.endswith(".py"):
        program += ".py"
    folder = code
    if submit:
        from .handlers.fetch import fetch_code
        from .settings import ArchiveLimits

        folder = Path(fetch_code(submit, ArchiveLimits.from_env(env)))
    script = folder / (program or "inference.py")
    if not script.is_file():
        where = f"SAGEMAKER_SUBMIT_DIRECTORY {submit!r}" if submit else f"{code}"
        found = sorted(p.name for p in folder.glob("*.py")) if folder.is_dir() else []
        raise PredictorLoadError(
            f"SAGEMAKER_PROGRAM {script.name!r} not found in {where} (Python files there: "
            f"{', '.join(found) or 'none'}); set SAGEMAKER_PROGRAM to the inference script. "
            f"The server does not fall back to a built-in predictor when a script is configured"
        )
    return script


def resolve_predictor(model_dir: str, target: str | None, env: Mapping[str, str]) -> Any:
    """Pick (but do not load) the predictor for ``model_dir`` by the loading order."""
    root = Path(model_dir)
    code = root / "code"
    search = [str(code), str(root)]
    if target:
        from .requirements import install_requirements

        install_requirements(code, env)
        return _instantiate(import_object(target, search=search), target)
    if not root.is_dir():
        raise PredictorLoadError(
            f"Model directory {model_dir!r} does not exist; pass --model-dir or set "
            f"ENDPOINTKIT_MODEL_DIR (SageMaker: /opt/ml/model, Vertex: AIP_STORAGE_URI)"
        )
    from .handlers.toolkit import ToolkitPredictor
    from .requirements import install_requirements

    configured = _configured_script(code, env)
    if configured is not None:  # never a fallback to a built-in: a wrong model would serve
        install_requirements(configured.parent, env)
        return ToolkitPredictor(configured)
    script = code / "inference.py"
    if script.is_file():
        install_requirements(code, env)
        return ToolkitPredictor(script)
    for cpr in (root / "predictor.py", code / "predictor.py"):
        if cpr.is_file():
            install_requirements(code, env)
            name = _find_cpr_class(cpr, env)
            try:
                obj = import_object(name, search=[str(cpr.parent)])
            except ImportError as exc:
                if "fastapi" not in str(exc).lower():
                    raise
                # google.cloud.aiplatform.prediction imports FastAPI through its package
                raise MissingExtraError(
                    f"{cpr} needs FastAPI (Vertex AI Custom Prediction Routines): pip install "
                    f"'endpointkit[cpr]' (google-cloud-aiplatform[prediction]); {exc}"
                ) from exc
            return _instantiate(obj, name)
    for files, handler, extra in BUILTINS:
        for fname in files:
            if (root / fname).is_file():
                try:
                    cls = import_object(handler)
                except ImportError as exc:
                    raise MissingExtraError(
                        f"{fname} needs the {extra!r} extra: pip install 'endpointkit[{extra}]' "
                        f"({exc})"
                    ) from exc
                return cls()
    names = ", ".join(f for files, _, _ in BUILTINS for f in files)
    raise PredictorLoadError(
        f"No predictor found in {model_dir!r}: set ENDPOINTKIT_PREDICTOR=module:Class, add "
        f"code/inference.py (SageMaker toolkit) or predictor.py (Vertex CPR), or provide one "
        f"of: {names}"
    )


def load_predictor(
    model_dir: str | os.PathLike[str] | None,
    *,
    predictor: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Predictor:
    """Return a loaded Predictor for ``model_dir`` (see the module docstring for the order).

    ``model_dir`` None means ``ENDPOINTKIT_MODEL_DIR``, ``AIP_STORAGE_URI`` or ``/opt/ml/model``.
    Raises PredictorLoadError (a ValueError) or MissingExtraError (an ImportError) with what to
    do; exceptions from the predictor's own ``load`` propagate unchanged.
    """
    env = os.environ if env is None else env
    if model_dir is None:
        model_dir = (
            env.get("ENDPOINTKIT_MODEL_DIR") or env.get("AIP_STORAGE_URI") or "/opt/ml/model"
        )
    local_dir = fetch_artifacts(os.fspath(model_dir), env)
    target = predictor or env.get("ENDPOINTKIT_PREDICTOR") or None
    instance = resolve_predictor(local_dir, target, env)
    instance.load(local_dir)
    return instance  # type: ignore[no-any-return]
