"""Binary and array-native inputs reach the predictor as numpy arrays of the right dtype,
shape and values: npy bodies on /invocations, OIP's binary tensor extension over HTTP (built
by tritonclient), ``raw_input_contents`` over gRPC, and numeric JSON instances for a predictor
with ``array_input``. Malformed binary framing is a 400 that says what is wrong."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from .conftest import Server, free_port, start_server

httpclient = pytest.importorskip("tritonclient.http", reason="pip install 'tritonclient[http]'")
grpcclient = pytest.importorskip("tritonclient.grpc", reason="pip install 'tritonclient[grpc]'")

INFER = "/v2/models/model/infer"


@pytest.fixture(scope="module")
def describe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    tmp: Path = tmp_path_factory.mktemp("binary")
    (tmp / "model").mkdir()
    port = free_port()
    args = ["--model-dir", str(tmp / "model"), "--predictor", "predictors:Describe"]
    args += ["--grpc-port", str(port)]
    with start_server(tmp, args, {"ENDPOINTKIT_REQUEST_LOG": "errors"}) as server:
        yield server, port


def _seen(prediction: Any) -> tuple[str, str, str, Any]:
    """``Describe``'s string -> (kind, dtype, writable, values)."""
    text = prediction.decode() if isinstance(prediction, bytes) else prediction
    kind, dtype, writable, values = text.split(" ", 3)
    return kind, dtype, writable, json.loads(values)


def _npy(arr: Any, version: tuple[int, int] | None = None) -> bytes:
    buf = io.BytesIO()
    if version is None:
        np.save(buf, arr)
    else:
        np.lib.format.write_array(buf, arr, version=version)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("arr", "version"),
    [
        (np.arange(1000, 1128, dtype=np.int64).reshape(1, 128), None),
        (np.array([[1.5, -2.25], [3.0, 4.0]], dtype=np.float32), None),
        (np.array([[1, 2, 3]], dtype=">i4"), None),  # big-endian stays big-endian
        (np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)), None),
        (np.array([[True, False]]), None),
        (np.array([[250, 7]], dtype=np.uint8), (2, 0)),  # a version 2 header
    ],
    ids=["int64-128", "float32", "big-endian", "fortran", "bool", "npy-v2"],
)
def test_npy_arrives_as_the_array_sent(
    describe: tuple[Server, int], arr: Any, version: tuple[int, int] | None
) -> None:
    r = describe[0].client.post(
        "/invocations",
        content=_npy(arr, version),
        headers={"Content-Type": "application/x-npy", "Accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    seen = [_seen(p) for p in r.json()]
    assert [s[0] for s in seen] == ["ndarray"] * len(arr)
    assert {s[1] for s in seen} == {arr.dtype.str}
    assert {s[2] for s in seen} == {"1"}  # writable, as np.load answers
    assert [s[3] for s in seen] == arr.tolist()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_npy(np.arange(4, dtype=np.int64))[:-3], "Malformed npy body"),  # data cut short
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': '<i8'}", "Malformed npy body"),  # bad header
        (b"\x93NUMPY\x09\x00" + b"x" * 20, "Malformed npy body"),  # unknown version
        (_npy(np.array([{"a": 1}], dtype=object)), "Malformed npy body"),  # pickled objects
    ],
    ids=["truncated", "bad-header", "bad-version", "object"],
)
def test_malformed_npy_is_400(describe: tuple[Server, int], body: bytes, message: str) -> None:
    r = describe[0].client.post(
        "/invocations", content=body, headers={"Content-Type": "application/x-npy"}
    )
    assert r.status_code == 400
    assert r.json()["code"] == "malformed_npy"
    assert message in r.json()["error"]


@pytest.mark.parametrize(
    ("datatype", "arr"),
    [
        ("INT64", np.arange(1000, 1128, dtype=np.int64).reshape(1, 128)),
        ("FP16", np.array([[0.5, -1.25, 3.0]], dtype=np.float16)),
        ("UINT8", np.array([[0, 255], [7, 9]], dtype=np.uint8)),
        ("BOOL", np.array([[True, False, True]])),
        ("FP64", np.array([[1e300, -0.0]], dtype=np.float64)),
    ],
)
def test_oip_binary_from_tritonclient(
    describe: tuple[Server, int], datatype: str, arr: Any
) -> None:
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{describe[0].port}")
    try:
        inp = httpclient.InferInput("input-0", list(arr.shape), datatype)
        inp.set_data_from_numpy(arr, binary_data=True)
        out = httpclient.InferRequestedOutput("output-0", binary_data=True)
        result = client.infer("model", [inp], outputs=[out])
    finally:
        client.close()
    seen = [_seen(p) for p in result.as_numpy("output-0")]
    assert {s[0] for s in seen} == {"ndarray"}
    assert {np.dtype(s[1]) for s in seen} == {arr.dtype}
    assert [s[3] for s in seen] == arr.tolist()


def test_grpc_raw_input_contents(describe: tuple[Server, int]) -> None:
    arr = np.arange(1000, 1128, dtype=np.int64).reshape(1, 128)
    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{describe[1]}")
    try:
        inp = grpcclient.InferInput("input-0", [1, 128], "INT64")
        inp.set_data_from_numpy(arr)  # tritonclient sends raw_input_contents
        result = client.infer("model", [inp])
    finally:
        client.close()
    kind, dtype, writable, values = _seen(result.as_numpy("output-0")[0])
    assert (kind, np.dtype(dtype), values) == ("ndarray", np.dtype(np.int64), arr[0].tolist())
    assert writable == "0"  # a read-only view of the request's bytes: no copy


def _binary_request(head: dict[str, Any], raw: bytes, header_len: str | None = None) -> Any:
    text = orjson.dumps(head)
    length = str(len(text)) if header_len is None else header_len
    return text + raw, {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": length,
    }


def _tensor(size: Any) -> dict[str, Any]:
    t = {"name": "input-0", "datatype": "INT64", "shape": [1, 2]}
    return {"inputs": [{**t, "parameters": {"binary_data_size": size}}]}


RAW = np.array([[5, 6]], dtype=np.int64).tobytes()


@pytest.mark.parametrize(
    ("head", "raw", "header_len", "message"),
    [
        (_tensor(16), RAW, "abc", "Inference-Header-Content-Length must be an integer"),
        (_tensor(16), RAW, "-1", "Inference-Header-Content-Length exceeds the body"),
        (_tensor(16), RAW, "100000", "Inference-Header-Content-Length exceeds the body"),
        (_tensor(32), RAW, None, "binary_data_size 32 exceeds the binary payload"),
        (_tensor(-8), RAW, None, "binary_data_size must be a byte count, got -8"),
        (_tensor(True), RAW, None, "binary_data_size must be a byte count, got True"),
        (_tensor(12), RAW, None, "buffer size must be a multiple of element size"),
        (_tensor(16), RAW + b"\0" * 8, None, "8 bytes of binary data after the inputs"),
    ],
    ids=[
        "not-int",
        "negative",
        "too-long",
        "size-over",
        "size-negative",
        "size-bool",
        "size-not-multiple",
        "trailing-bytes",
    ],
)
def test_malformed_binary_framing_is_400(
    describe: tuple[Server, int],
    head: dict[str, Any],
    raw: bytes,
    header_len: str | None,
    message: str,
) -> None:
    body, headers = _binary_request(head, raw, header_len)
    r = describe[0].client.post(INFER, content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_binary_request_decodes_exactly(describe: tuple[Server, int]) -> None:
    body, headers = _binary_request(_tensor(16), RAW)
    r = describe[0].client.post(INFER, content=body, headers=headers)
    assert r.status_code == 200, r.text
    data = r.json()["outputs"][0]["data"]
    assert [_seen(d)[1:] for d in data] == [("<i8", "0", [5, 6])]


@pytest.mark.parametrize("route", ["/invocations", "/predict"])
@pytest.mark.parametrize(
    ("instances", "dtype"),
    [
        ([list(range(1000, 1128))], "<i8"),
        ([[1.5, 2], [3, 4]], "<f8"),
        ([[True, False]], "|b1"),
        ([3, 4], "<i8"),
    ],
    ids=["int-128", "mixed", "bool", "scalars"],
)
def test_numeric_json_arrives_as_one_array(
    describe: tuple[Server, int], route: str, instances: list[Any], dtype: str
) -> None:
    r = describe[0].client.post(route, json={"instances": instances})
    assert r.status_code == 200, r.text
    seen = [_seen(p) for p in r.json()["predictions"]]
    assert [s[:2] for s in seen] == [("ndarray", dtype)] * len(instances)
    assert [s[3] for s in seen] == np.asarray(instances).tolist()


@pytest.mark.parametrize(
    "instances",
    [[["a", "b"]], [[1, 2], [3]], [[1, None]], [[1, "a"]], [{"x": 1}]],
    ids=["strings", "ragged", "null", "number-and-string", "objects"],
)
def test_other_json_stays_lists(describe: tuple[Server, int], instances: list[Any]) -> None:
    r = describe[0].client.post("/invocations", json={"instances": instances})
    assert r.status_code == 200, r.text
    seen = [_seen(p) for p in r.json()["predictions"]]
    assert [s[0] for s in seen] == ["list"] * len(instances)
    assert [s[3] for s in seen] == instances


@pytest.mark.parametrize("dtype", [">i4", ">f8", "<f4", "|u1"])
def test_binary_outputs_are_little_endian_whatever_the_predictor_returns(dtype: str) -> None:
    """OIP's binary tensor extension carries little-endian bytes; a big-endian array (from an
    npy body, say) went out in its own byte order."""
    from endpointkit.serving.contracts.oip import _output_tensor

    arr = np.array([[1, 2, 300]], dtype=dtype) if dtype != "|u1" else np.array([[1, 2, 3]], "u1")
    tensor, raw = _output_tensor("y", arr, True)
    assert raw == arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    assert tensor["parameters"] == {"binary_data_size": len(raw)}
    assert tensor["datatype"] == {"i": "INT32", "f": "FP64" if "8" in dtype else "FP32"}.get(
        arr.dtype.kind, "UINT8"
    )
