"""Open Inference Protocol v2, driven by a real OIP client (tritonclient's HTTP client)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from .conftest import Server, start_server

httpclient = pytest.importorskip("tritonclient.http", reason="pip install 'tritonclient[http]'")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture(scope="module")
def oip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("oip")
    (tmp / "model").mkdir()
    args = ["--model-dir", str(tmp / "model"), "--predictor", "predictors:Shape"]
    env = {"ENDPOINTKIT_MODEL_NAME": "adder", "ENDPOINTKIT_VERSION": "v3"}
    with start_server(tmp, args, env) as server:
        yield server


@pytest.fixture
def client(oip: Server) -> Iterator[object]:
    c = httpclient.InferenceServerClient(url=f"127.0.0.1:{oip.port}")
    try:
        yield c
    finally:
        c.close()


def test_health_and_metadata(client: object, oip: Server) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("adder")
    assert client.is_model_ready("adder", "v3")
    assert not client.is_model_ready("nope")
    meta = client.get_model_metadata("adder")
    assert meta["name"] == "adder"
    assert meta["versions"] == ["v3"]
    assert meta["inputs"][0]["shape"] == [-1, 4]
    assert client.get_server_metadata()["name"] == "endpointkit"
    assert oip.client.get("/v2/health/ready").content == b""


@pytest.mark.parametrize("binary", [True, False])
def test_infer_roundtrip(client: object, binary: bool) -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    inp = httpclient.InferInput("input-0", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    out = httpclient.InferRequestedOutput("output-0", binary_data=binary)
    result = client.infer("adder", [inp], outputs=[out], request_id="r1")
    np.testing.assert_allclose(result.as_numpy("output-0"), [6.0, 22.0])
    response = result.get_response()
    assert response["id"] == "r1"
    assert response["model_version"] == "v3"


def test_infer_default_binary_outputs(client: object) -> None:
    x = np.ones((3, 4), dtype=np.float64)
    inp = httpclient.InferInput("input-0", [3, 4], "FP64")
    inp.set_data_from_numpy(x)
    result = client.infer("adder", [inp])  # no outputs: the client asks for binary data
    np.testing.assert_allclose(result.as_numpy("output-0"), [4.0, 4.0, 4.0])


def test_errors_reach_the_client(client: object) -> None:
    inp = httpclient.InferInput("input-0", [1, 3], "FP32")
    inp.set_data_from_numpy(np.ones((1, 3), dtype=np.float32))
    with pytest.raises(InferenceServerException, match=r"expected 4 values|shape"):
        client.infer("adder", [inp])
    with pytest.raises(InferenceServerException, match="Unknown model"):
        client.infer("other", [inp])


def test_hand_written_json_and_errors(oip: Server) -> None:
    body = {
        "id": "x",
        "inputs": [{"name": "a", "shape": [1, 4], "datatype": "INT64", "data": [[1, 2, 3, 4]]}],
    }
    r = oip.client.post("/v2/models/adder/infer", json=body)
    assert r.status_code == 200
    out = r.json()
    assert out["model_name"] == "adder"
    assert out["outputs"][0]["data"] == [10.0]
    assert out["outputs"][0]["shape"] == [1]
    bad = {"inputs": [{"name": "a", "shape": [2, 4], "datatype": "FP32", "data": [1, 2]}]}
    r = oip.client.post("/v2/models/adder/infer", json=bad)
    assert r.status_code == 400
    assert "needs 8 values" in r.json()["error"]
    r = oip.client.post("/v2/models/adder/infer", json={"inputs": [{"name": "a"}]})
    assert r.status_code == 400
    assert isinstance(r.json()["error"], str)
    assert oip.client.get("/v2/models/adder/explode").status_code == 404
    assert oip.client.get("/v2/models/adder/infer").status_code == 405
