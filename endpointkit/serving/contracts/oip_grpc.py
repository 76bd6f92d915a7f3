"""Open Inference Protocol v2 over gRPC: KServe's ``inference.GRPCInferenceService``.

The six calls a v2 client makes (``tritonclient.grpc``, KServe's ``InferenceGRPCClient``):
ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer. Each takes
the request message and returns the response message, or raises ServingError, which
``grpc_server.py`` turns into a gRPC status. The inference itself is the REST contract's
(:func:`oip.infer_arrays`), so both transports validate, batch and answer alike.

Inputs become numpy arrays without Python lists: ``raw_input_contents`` through
``numpy.frombuffer`` (read-only views of the request's bytes), typed ``contents`` through
``numpy.fromiter`` over the repeated field. Outputs always travel as ``raw_output_contents``,
as Triton answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .._grpc import grpc_predict_v2_pb2 as pb
from ..errors import BadRequest, NotFound
from . import oip

if TYPE_CHECKING:
    from ..app import ServingApp

SERVICE = "inference.GRPCInferenceService"

# datatype -> its numpy dtype in raw contents (little-endian, as the protocol says)
_RAW: dict[str, Any] = {
    k: np.dtype(v).newbyteorder("<") for k, v in oip.DATATYPES.items() if k != "BYTES"
}
# datatype -> (the InferTensorContents field that carries it, numpy dtype of that field, the
# datatype's own dtype when the field is wider: INT8/16 and UINT8/16 arrive widened)
_TYPED: dict[str, tuple[str, Any, Any]] = {
    "BOOL": ("bool_contents", np.dtype("bool"), None),
    "INT8": ("int_contents", np.dtype("int32"), np.dtype("int8")),
    "INT16": ("int_contents", np.dtype("int32"), np.dtype("int16")),
    "INT32": ("int_contents", np.dtype("int32"), None),
    "INT64": ("int64_contents", np.dtype("int64"), None),
    "UINT8": ("uint_contents", np.dtype("uint32"), np.dtype("uint8")),
    "UINT16": ("uint_contents", np.dtype("uint32"), np.dtype("uint16")),
    "UINT32": ("uint_contents", np.dtype("uint32"), None),
    "UINT64": ("uint64_contents", np.dtype("uint64"), None),
    "FP32": ("fp32_contents", np.dtype("float32"), None),
    "FP64": ("fp64_contents", np.dtype("float64"), None),
    "BYTES": ("bytes_contents", np.dtype("object"), None),
}


async def server_live(app: ServingApp, request: pb.ServerLiveRequest) -> pb.ServerLiveResponse:
    """The process answers: always live."""
    return pb.ServerLiveResponse(live=True)


async def server_ready(app: ServingApp, request: pb.ServerReadyRequest) -> pb.ServerReadyResponse:
    """Ready once the model is loaded (and while it is not stuck)."""
    return pb.ServerReadyResponse(ready=app.runtime.ready)


async def model_ready(app: ServingApp, request: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
    """Ready for this server's model once loaded; not ready for any other name (as Triton)."""
    try:
        oip.check_model(app, request.name, request.version)
    except NotFound:
        return pb.ModelReadyResponse(ready=False)
    return pb.ModelReadyResponse(ready=app.runtime.ready)


async def server_metadata(
    app: ServingApp, request: pb.ServerMetadataRequest
) -> pb.ServerMetadataResponse:
    """The server's name and version."""
    from .. import __version__

    return pb.ServerMetadataResponse(name="endpointkit", version=__version__)


def _tensor_metadata(t: dict[str, Any]) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=str(t.get("name", "")),
        datatype=str(t.get("datatype", "")),
        shape=[int(d) for d in t.get("shape", [])],
    )


async def model_metadata(
    app: ServingApp, request: pb.ModelMetadataRequest
) -> pb.ModelMetadataResponse:
    """The REST contract's model metadata, as the message."""
    oip.check_model(app, request.name, request.version)
    if not app.runtime.ready:
        raise app.runtime.not_ready()
    meta = await oip.model_metadata_body(app)
    return pb.ModelMetadataResponse(
        name=str(meta.get("name", app.settings.model_name)),
        versions=[str(v) for v in meta.get("versions", [])],
        platform=str(meta.get("platform", "endpointkit")),
        inputs=[_tensor_metadata(t) for t in meta.get("inputs", []) if isinstance(t, dict)],
        outputs=[_tensor_metadata(t) for t in meta.get("outputs", []) if isinstance(t, dict)],
    )


def _parameters(params: Any) -> dict[str, Any]:
    """An ``InferParameter`` map -> plain values."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        which = value.WhichOneof("parameter_choice")
        if which is not None:
            out[key] = getattr(value, which)
    return out


def _bad(name: str, message: str) -> BadRequest:
    return BadRequest(f"Input {name!r}: {message}", code="bad_tensor")


def input_array(tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | None) -> Any:
    """One input tensor -> a numpy array of its shape; ``raw``: its ``raw_input_contents``
    entry, None when the data is in ``contents``. BadRequest when they disagree."""
    name = tensor.name
    datatype = tensor.datatype
    shape = list(tensor.shape)
    size = 1
    for d in shape:
        if d < 0:
            raise _bad(name, f"shape {shape} has a negative size")
        size *= d
    arr: Any
    if raw is not None and datatype in _RAW:
        dtype = _RAW[datatype]
        if len(raw) != size * dtype.itemsize:
            raise _bad(
                name,
                f"raw_input_contents holds {len(raw)} bytes; shape {shape} of {datatype} "
                f"needs {size * dtype.itemsize}",
            )
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    if datatype not in oip.DATATYPES:
        raise _bad(name, f"datatype must be one of {', '.join(oip.DATATYPES)}, got {datatype!r}")
    if raw is not None:  # BYTES
        arr = oip._unpack_bytes(memoryview(raw), name)
    else:
        if datatype not in _TYPED:  # FP16: no typed field
            raise _bad(name, f"{datatype} travels in raw_input_contents only")
        field, wire, narrow = _TYPED[datatype]
        values = getattr(tensor.contents, field)
        if len(values) != size:
            raise _bad(name, f"shape {shape} needs {size} values, got {len(values)} in {field}")
        if datatype == "BYTES":
            arr = np.empty(size, dtype=object)
            arr[:] = list(values)
        else:
            arr = np.fromiter(values, dtype=wire, count=size)
            if narrow is not None:
                info = np.iinfo(narrow)
                if size and (arr.min() < info.min or arr.max() > info.max):
                    raise _bad(
                        name,
                        f"a value in {field} does not fit {datatype}; send values that fit "
                        f"the datatype or declare a wider one",
                    )
                arr = arr.astype(narrow)
    if arr.size != size:
        raise _bad(name, f"shape {shape} needs {size} values, got {arr.size}")
    return arr.reshape(shape)


async def model_infer(app: ServingApp, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
    """Decode the inputs, run the shared inference, answer raw outputs."""
    runtime = app.runtime
    oip.check_model(app, request.model_name, request.model_version)
    if not runtime.ready:
        raise runtime.not_ready()
    inputs = request.inputs
    if not inputs:
        raise BadRequest("The request has no inputs", code="bad_request")
    raws = request.raw_input_contents
    if raws and len(raws) != len(inputs):
        raise BadRequest(
            f"raw_input_contents has {len(raws)} entries for {len(inputs)} inputs; send one "
            f"per input, in order",
            code="bad_tensor",
        )
    arrays: dict[str, Any] = {}
    for i, tensor in enumerate(inputs):
        if raws and tensor.HasField("contents"):
            raise _bad(tensor.name, "send raw_input_contents or contents, not both")
        arrays[tensor.name] = input_array(tensor, raws[i] if raws else None)
    parameters = _parameters(request.parameters) if request.parameters else None
    names = [out.name for out in request.outputs]
    produced = await oip.infer_arrays(app, arrays, parameters, names, binary=True)
    response = pb.ModelInferResponse(model_name=app.settings.model_name, id=request.id)
    if app.settings.version:
        response.model_version = app.settings.version
    for tensor, raw in produced:
        response.outputs.add(
            name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
        )
        response.raw_output_contents.append(raw or b"")
    return response


# method name -> (function, request message, whether it counts against the in-flight limit and
# goes through admission)
METHODS: dict[str, tuple[Callable[..., Awaitable[Any]], Any, bool]] = {
    "ServerLive": (server_live, pb.ServerLiveRequest, False),
    "ServerReady": (server_ready, pb.ServerReadyRequest, False),
    "ModelReady": (model_ready, pb.ModelReadyRequest, False),
    "ServerMetadata": (server_metadata, pb.ServerMetadataRequest, False),
    "ModelMetadata": (model_metadata, pb.ModelMetadataRequest, False),
    "ModelInfer": (model_infer, pb.ModelInferRequest, True),
}
