"""Open Inference Protocol v2 (KServe v2) over HTTP/REST.

Routes: ``/v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/{m}[/versions/{v}]``,
``.../ready`` and ``.../infer``. Tensors (datatype, shape, row-major ``data``) become numpy arrays;
one input reaches the predictor as an array with the batch on the first axis, several as a dict
by name. Triton's binary tensor extension (``Inference-Header-Content-Length``) is accepted for
inputs and used for outputs when the request asks for it. Errors are ``{"error": "..."}`` with a
4xx/5xx status; health answers carry the status only.
"""

from __future__ import annotations

import functools
import weakref
from typing import TYPE_CHECKING, Any

from .. import codecs
from ..errors import BadRequest, NotFound, ServingError
from ..messages import Request, Response

if TYPE_CHECKING:
    from ..app import ServingApp

HEADER_LENGTH = b"inference-header-content-length"
DATATYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
_NP_TO_OIP = {v: k for k, v in DATATYPES.items()}


class _HealthNotReady(ServingError):
    """OIP health answers carry no body."""

    status = 503
    code = "not_ready"


async def server_metadata(app: ServingApp, req: Request) -> Response:
    """``GET /v2``."""
    from .. import __version__

    body = {"name": "endpointkit", "version": __version__, "extensions": ["binary_tensor_data"]}
    return Response(200, codecs.dumps_json(body))


async def live(app: ServingApp, req: Request) -> Response:
    """The process answers: always 200."""
    return Response(200, b"", b"text/plain")


async def ready(app: ServingApp, req: Request) -> Response:
    """200 once the model is loaded, else 503 (empty bodies)."""
    if not app.runtime.ready:
        raise _HealthNotReady("")
    return Response(200, b"", b"text/plain")


def _model_route(app: ServingApp, path: str) -> tuple[str, str | None, str]:
    """``/v2/models/{m}[/versions/{v}][/ready|/infer]`` -> (name, version, action)."""
    parts = path[len("/v2/models/") :].split("/")
    name = parts[0]
    rest = parts[1:]
    version = None
    if len(rest) >= 2 and rest[0] == "versions":
        version = rest[1]
        rest = rest[2:]
    action = rest[0] if rest else ""
    if len(rest) > 1 or action not in ("", "ready", "infer"):
        raise NotFound(f"No route {path}")
    check_model(app, name, version)
    return name, version, action


def check_model(app: ServingApp, name: str, version: str | None) -> None:
    """NotFound unless ``name`` (and ``version``, when both it and the server's are set) is
    the model this server serves."""
    if name != app.settings.model_name:
        raise NotFound(f"Unknown model {name!r}; this server serves {app.settings.model_name!r}")
    if version and app.settings.version is not None and version != app.settings.version:
        raise NotFound(f"Unknown version {version!r} of model {name!r}")


# the outputs infer returned (name, datatype, shape with -1 for the batch), per runtime
_LEARNED: weakref.WeakKeyDictionary[Any, list[dict[str, Any]]] = weakref.WeakKeyDictionary()


def _declared(app: ServingApp, key: str) -> list[dict[str, Any]] | None:
    """The predictor's ``oip_metadata[key]`` (its inputs or outputs), if it declares them."""
    declared = getattr(app.runtime.predictor, "oip_metadata", None)
    if isinstance(declared, dict) and isinstance(declared.get(key), list):
        return [t for t in declared[key] if isinstance(t, dict)]
    return None


def _learn(app: ServingApp, tensors: list[dict[str, Any]]) -> None:
    if app.runtime not in _LEARNED:
        _LEARNED[app.runtime] = [
            {"name": t["name"], "datatype": t["datatype"], "shape": [-1, *t["shape"][1:]]}
            for t in tensors
        ]


async def _warm_up(app: ServingApp) -> None:
    """One predict on zeros of ``input_shape`` (when every size is known), to learn what
    infer returns; a predictor that rejects it leaves the metadata's default."""
    import numpy as np

    shape = app.runtime.options.input_shape
    if not shape or any(d is None for d in shape):
        return
    zeros = np.zeros((1, *[int(d) for d in shape if d is not None]), dtype=np.float32)
    try:
        predictions = await app.runtime.predict(zeros, None)
        _learn(app, [t for t, _ in _output_tensors(app, predictions, [], binary=False)])
    except Exception as exc:  # the default stands; the reason goes to the log
        app.log.event("warning", "oip_warmup_failed", error=f"{type(exc).__name__}: {exc}")


async def model_metadata_body(app: ServingApp) -> dict[str, Any]:
    """Model metadata: the predictor's ``oip_metadata``, else the input from ``input_shape``
    and the outputs infer returns (learned from the first infer or a warm-up call)."""
    predictor = app.runtime.predictor
    declared = getattr(predictor, "oip_metadata", None)
    meta: dict[str, Any] = {"name": app.settings.model_name, "platform": "endpointkit"}
    if app.settings.version:
        meta["versions"] = [app.settings.version]
    if isinstance(declared, dict) and "outputs" in declared:
        meta.update(declared)
        return meta
    shape = app.runtime.options.input_shape
    dims = [-1, *[-1 if d is None else d for d in shape]] if shape else [-1, -1]
    meta["inputs"] = [{"name": "input-0", "datatype": "FP32", "shape": dims}]
    if app.runtime not in _LEARNED:
        await _warm_up(app)
    meta["outputs"] = _LEARNED.get(app.runtime) or [
        {"name": "output-0", "datatype": "FP32", "shape": [-1]}
    ]
    if isinstance(declared, dict):
        meta.update(declared)
    return meta


async def model_route(app: ServingApp, req: Request) -> Response:
    """Dispatch ``/v2/models/...`` by action and method."""
    _, _, action = _model_route(app, req.path)
    if action == "infer":
        if req.method != "POST":
            raise ServingError("Use POST for infer", status=405, code="method_not_allowed")
        return await infer(app, req)
    if req.method != "GET":
        raise ServingError("Use GET", status=405, code="method_not_allowed")
    if action == "ready":
        return await ready(app, req)
    if not app.runtime.ready:
        raise app.runtime.not_ready()
    return Response(200, codecs.dumps_json(await model_metadata_body(app)))


def _to_array(tensor: Any, binary: memoryview | None, offset: int) -> tuple[Any, int]:
    import numpy as np

    if not isinstance(tensor, dict):
        raise BadRequest("Each input must be a JSON object", code="bad_tensor")
    name = tensor.get("name")
    datatype = tensor.get("datatype")
    shape = tensor.get("shape")
    if not isinstance(name, str) or datatype not in DATATYPES:
        raise BadRequest(
            f"Input {name!r}: 'name' must be a string and 'datatype' one of {', '.join(DATATYPES)}",
            code="bad_tensor",
        )
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadRequest(f"Input {name!r}: 'shape' must be a list of sizes", code="bad_tensor")
    size = 1
    for d in shape:
        size *= d
    dtype = DATATYPES[datatype]
    params = tensor.get("parameters") or {}
    nbytes = params.get("binary_data_size") if isinstance(params, dict) else None
    if nbytes is not None:
        if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes < 0:
            raise BadRequest(
                f"Input {name!r}: binary_data_size must be a byte count, got {nbytes!r}",
                code="bad_tensor",
            )
        if binary is None or offset + nbytes > len(binary):
            raise BadRequest(
                f"Input {name!r}: binary_data_size {nbytes} exceeds the binary payload",
                code="bad_tensor",
            )
        chunk = binary[offset : offset + nbytes]
        offset += nbytes
        if datatype == "BYTES":
            arr = _unpack_bytes(chunk, name)
        else:
            try:
                arr = np.frombuffer(chunk, dtype=_little_endian(dtype))
            except ValueError as exc:
                raise BadRequest(f"Input {name!r}: {exc}", code="bad_tensor") from None
    else:
        data = tensor.get("data")
        if data is None:
            raise BadRequest(f"Input {name!r}: 'data' is missing", code="bad_tensor")
        try:
            if datatype == "BYTES":
                arr = np.array(data, dtype=object).reshape(-1)
            else:
                arr = np.asarray(data, dtype=dtype).reshape(-1)
        except (ValueError, TypeError, OverflowError) as exc:  # OverflowError: 300 as INT8
            raise BadRequest(
                f"Input {name!r}: data is not {datatype}: {exc}; send values that fit the "
                f"datatype or declare a wider one",
                code="bad_tensor",
            ) from None
    if arr.size != size:
        raise BadRequest(
            f"Input {name!r}: shape {shape} needs {size} values, got {arr.size}", code="bad_tensor"
        )
    return arr.reshape(shape), offset


def _unpack_bytes(chunk: memoryview, name: str) -> Any:
    import numpy as np

    items: list[bytes] = []
    i = 0
    raw = bytes(chunk)
    while i < len(raw):
        if i + 4 > len(raw):
            raise BadRequest(f"Input {name!r}: truncated BYTES element", code="bad_tensor")
        n = int.from_bytes(raw[i : i + 4], "little")
        items.append(raw[i + 4 : i + 4 + n])
        i += 4 + n
    return np.array(items, dtype=object)


def _pack_bytes(arr: Any) -> bytes:
    out = bytearray()
    for item in arr.reshape(-1):
        b = item if isinstance(item, bytes) else str(item).encode()
        out += len(b).to_bytes(4, "little") + b
    return bytes(out)


@functools.cache
def _little_endian(dtype: str) -> Any:
    """The numpy dtype of a datatype's bytes in the binary extension (little-endian)."""
    import numpy as np

    return np.dtype(dtype).newbyteorder("<")


@functools.cache
def _native_datatypes() -> dict[Any, str]:
    """Native-order numpy dtype -> OIP datatype (BYTES aside)."""
    import numpy as np

    return {np.dtype(v): k for k, v in DATATYPES.items() if k != "BYTES"}


def _output_tensor(name: str, value: Any, binary: bool) -> tuple[dict[str, Any], bytes | None]:
    import numpy as np

    arr: Any = np.asarray(value)
    datatype: str | None = _native_datatypes().get(arr.dtype)  # no dtype.name: Python code
    if datatype is not None:
        pass
    elif arr.dtype.kind in ("U", "S", "O"):
        datatype = "BYTES"
        arr = arr.astype(object)
    elif arr.dtype.name in _NP_TO_OIP:
        datatype = _NP_TO_OIP[arr.dtype.name]
    else:
        arr = arr.astype(np.float64)
        datatype = "FP64"
    tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
    if binary:
        if datatype == "BYTES":
            raw = _pack_bytes(arr)
        else:  # the extension's bytes are little-endian, whatever order the array is in
            raw = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        tensor["parameters"] = {"binary_data_size": len(raw)}
        return tensor, raw
    flat = arr.reshape(-1)
    if datatype == "BYTES":
        tensor["data"] = [
            x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in flat
        ]
    else:
        tensor["data"] = flat
    return tensor, None


def _output_tensors(
    app: ServingApp, predictions: Any, names: list[str], binary: bool
) -> list[tuple[dict[str, Any], bytes | None]]:
    """The response tensors: a dict of predictions by name, else one output named as the
    predictor declares it (else ``output-0``); only ``names`` when the request names outputs,
    and 400 for a name the model does not return (Triton: "unexpected inference output")."""
    if isinstance(predictions, dict):
        outputs = list(predictions.items())
    else:
        declared = _declared(app, "outputs")
        first = declared[0].get("name") if declared else None
        outputs = [(first if isinstance(first, str) else "output-0", predictions)]
    if names:
        have = {name for name, _ in outputs}
        missing = [n for n in names if n not in have]
        if missing:
            raise BadRequest(
                f"Unknown output {missing[0]!r} requested from model "
                f"{app.settings.model_name!r}; its outputs are {', '.join(sorted(have))}",
                code="bad_tensor",
            )
        outputs = [o for o in outputs if o[0] in names]
    return [_output_tensor(name, value, binary) for name, value in outputs]


async def infer(app: ServingApp, req: Request) -> Response:
    """``POST /v2/models/{m}/infer``."""
    runtime = app.runtime
    if not runtime.ready:
        raise runtime.not_ready()
    body = req.body
    binary: memoryview | None = None
    header_len = req.headers.get(HEADER_LENGTH)
    if header_len is not None:
        try:
            n = int(header_len)
        except ValueError:
            raise BadRequest("Inference-Header-Content-Length must be an integer") from None
        if not 0 <= n <= len(body):
            raise BadRequest("Inference-Header-Content-Length exceeds the body")
        binary = memoryview(body)[n:]
        body = body[:n]
    request = codecs.loads_json(body)
    if (
        not isinstance(request, dict)
        or not isinstance(request.get("inputs"), list)
        or not request["inputs"]
    ):
        raise BadRequest(
            'The body must be a JSON object with a non-empty "inputs" list', code="bad_request"
        )
    offset = 0
    arrays: dict[str, Any] = {}
    for tensor in request["inputs"]:
        arr, offset = _to_array(tensor, binary, offset)
        arrays[tensor["name"]] = arr
    if binary is not None and offset != len(binary):
        raise BadRequest(
            f"The body holds {len(binary) - offset} bytes of binary data after the inputs' "
            f"binary_data_size ({offset} bytes in all); check Inference-Header-Content-Length "
            f"and each input's binary_data_size",
            code="bad_tensor",
        )
    parameters = request.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise BadRequest('"parameters" must be a JSON object', code="bad_parameters")
    want_binary = bool(parameters and parameters.pop("binary_data_output", False))
    requested = request.get("outputs")
    names: list[str] = []
    if isinstance(requested, list):
        for out in requested:
            if isinstance(out, dict) and isinstance(out.get("name"), str):
                names.append(out["name"])
                p = out.get("parameters")
                if isinstance(p, dict) and p.get("binary_data"):
                    want_binary = True
    produced = await infer_arrays(app, arrays, parameters, names, want_binary)
    tensors = [t for t, _ in produced]
    chunks = [raw for _, raw in produced if raw is not None]
    response: dict[str, Any] = {
        "model_name": app.settings.model_name,
        "id": request.get("id") if isinstance(request.get("id"), str) else req.request_id,
        "outputs": tensors,
    }
    if app.settings.version:
        response["model_version"] = app.settings.version
    head = codecs.dumps_json(response)
    if not chunks:
        return Response(200, head)
    return Response(
        200,
        head + b"".join(chunks),
        b"application/octet-stream",
        [(b"inference-header-content-length", str(len(head)).encode())],
    )


async def infer_arrays(
    app: ServingApp,
    arrays: dict[str, Any],
    parameters: dict[str, Any] | None,
    names: list[str],
    binary: bool,
) -> list[tuple[dict[str, Any], bytes | None]]:
    """The inference both transports share: input tensors by name (numpy arrays) -> the
    output tensors (``_output_tensor``'s pairs; raw bytes when ``binary``)."""
    runtime = app.runtime
    declared_inputs = _declared(app, "inputs")
    if declared_inputs is not None:  # Triton: "unexpected inference input"
        known = [t.get("name") for t in declared_inputs]
        unknown = [n for n in arrays if n not in known]
        if unknown:
            raise BadRequest(
                f"Unknown input {unknown[0]!r} for model {app.settings.model_name!r}; its "
                f"inputs are {', '.join(map(str, known))}",
                code="bad_tensor",
            )
    if parameters is not None:
        parameters = {k: v for k, v in parameters.items() if k not in ("timeout", "priority")}
    instances: Any = next(iter(arrays.values())) if len(arrays) == 1 else arrays
    predictions = await runtime.predict(instances, parameters or None)
    runtime.check_count(instances, predictions)
    produced = _output_tensors(app, predictions, names, binary)
    _learn(app, [t for t, _ in produced])
    return produced
