"""OIP v2 over gRPC in process: settings, tensor decoding to numpy, the contract's infer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from endpointkit.serving.settings import Settings

pytest.importorskip("grpc", reason="pip install 'endpointkit[grpc]'")
from endpointkit.serving.app import ServingApp
from endpointkit.serving.contracts import oip_grpc
from endpointkit.serving.errors import BadRequest

from .grpc_predictors import Describe

pb = oip_grpc.pb


def test_grpc_port_is_off_by_default() -> None:
    assert Settings.from_env({}).grpc_port is None
    assert Settings.from_env({"ENDPOINTKIT_GRPC_PORT": "9001"}).grpc_port == 9001
    with pytest.raises(ValueError, match="ENDPOINTKIT_GRPC_PORT must be an integer"):
        Settings.from_env({"ENDPOINTKIT_GRPC_PORT": "grpc"})
    with pytest.raises(ValueError, match="port number"):
        Settings.from_env({"ENDPOINTKIT_GRPC_PORT": "70000"})


def _tensor(datatype: str, shape: list[int], **contents: Any) -> Any:
    tensor = pb.ModelInferRequest.InferInputTensor(name="x", datatype=datatype, shape=shape)
    for field, values in contents.items():
        getattr(tensor.contents, field).extend(values)
    return tensor


def test_raw_contents_are_a_numpy_view_of_the_bytes() -> None:
    values = np.arange(128, dtype=np.int64)
    raw = values.tobytes()
    arr = oip_grpc.input_array(_tensor("INT64", [2, 64]), raw)
    assert type(arr) is np.ndarray
    assert arr.dtype == np.int64
    assert arr.shape == (2, 64)
    np.testing.assert_array_equal(arr.reshape(-1), values)
    assert not arr.flags.writeable  # no copy: a view of the request's bytes
    half = oip_grpc.input_array(_tensor("FP16", [2]), np.array([0.5, 2], np.float16).tobytes())
    assert half.dtype == np.float16


def test_typed_contents_become_arrays_of_the_datatype() -> None:
    arr = oip_grpc.input_array(_tensor("INT64", [4], int64_contents=[1, -2, 3, 4]), None)
    assert type(arr) is np.ndarray
    assert arr.dtype == np.int64
    arr = oip_grpc.input_array(_tensor("UINT8", [2], uint_contents=[0, 255]), None)
    assert arr.dtype == np.uint8
    arr = oip_grpc.input_array(_tensor("BOOL", [1, 2], bool_contents=[True, False]), None)
    assert arr.dtype == np.bool_
    assert arr.shape == (1, 2)
    arr = oip_grpc.input_array(_tensor("BYTES", [2], bytes_contents=[b"a", b"bc"]), None)
    assert arr.dtype == object
    assert list(arr) == [b"a", b"bc"]
    raw = b"\x01\x00\x00\x00a\x02\x00\x00\x00bc"
    assert list(oip_grpc.input_array(_tensor("BYTES", [2]), raw)) == [b"a", b"bc"]
    empty = oip_grpc.input_array(_tensor("INT8", [0, 3]), None)
    assert empty.shape == (0, 3)
    assert empty.dtype == np.int8


@pytest.mark.parametrize(
    ("tensor", "raw", "match"),
    [
        (_tensor("UINT8", [1], uint_contents=[256]), None, "does not fit UINT8"),
        (_tensor("INT16", [1], int_contents=[-40000]), None, "does not fit INT16"),
        (_tensor("FP32", [3], fp32_contents=[1.0]), None, "needs 3 values, got 1"),
        (_tensor("FP32", [1]), b"\x00" * 3, "holds 3 bytes"),
        (_tensor("BYTES", [2]), b"\x05\x00\x00\x00ab", "truncated|needs 2 values"),
        (_tensor("BF16", [1]), b"\x00\x00", "datatype must be one of"),
    ],
)
def test_bad_tensors(tensor: Any, raw: bytes | None, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        oip_grpc.input_array(tensor, raw)


@pytest.fixture
def app() -> Iterator[ServingApp]:
    served = ServingApp(Settings(model_name="m", version="v1"), predictor=Describe())
    try:
        yield served
    finally:
        served.runtime.close()


def test_model_infer_hands_the_predictor_arrays(app: ServingApp) -> None:
    """One input reaches predict as an ndarray of its datatype, several as a dict of them."""
    request = pb.ModelInferRequest(model_name="m", id="q")
    request.inputs.add(name="a", datatype="INT64", shape=[2, 64])
    request.raw_input_contents.append(np.zeros(128, np.int64).tobytes())
    response = asyncio.run(oip_grpc.model_infer(app, request))
    assert response.id == "q"
    assert response.model_version == "v1"
    out = response.outputs[0]
    assert (out.name, out.datatype, list(out.shape)) == ("output-0", "BYTES", [2])
    raw = response.raw_output_contents[0]
    assert raw[4:].startswith(b"ndarray:int64:[2, 64]")

    request = pb.ModelInferRequest(model_name="m")
    request.inputs.add(name="a", datatype="FP32", shape=[1], contents={"fp32_contents": [1.0]})
    request.inputs.add(name="b", datatype="INT32", shape=[1], contents={"int_contents": [7]})
    response = asyncio.run(oip_grpc.model_infer(app, request))
    assert b"a=ndarray:float32,b=ndarray:int32" in response.raw_output_contents[0]


def test_generated_messages_coexist_with_tritonclients() -> None:
    """Same full names as tritonclient's messages, in a private descriptor pool."""
    service_pb2 = pytest.importorskip("tritonclient.grpc.service_pb2")
    ours = pb.ModelInferRequest(model_name="m", raw_input_contents=[b"\x01"])
    theirs = service_pb2.ModelInferRequest.FromString(ours.SerializeToString())
    assert theirs.model_name == "m"
    assert pb.ModelInferRequest.DESCRIPTOR.full_name == "inference.ModelInferRequest"
