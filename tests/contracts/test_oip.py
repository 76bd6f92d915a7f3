"""Open Inference Protocol v2 shapes, checked with tritonclient against the real server.

Sources: the KServe v2 protocol (kserve ``docs/predict-api/v2/required_api.md``: model metadata
"inputs"/"outputs" describe the tensors the model takes and returns; an inference request's
"outputs" names the outputs wanted) and Triton, which answers 400 for an input or a requested
output the model does not have (``src/core/infer_request.cc``: "unexpected inference input",
"unexpected inference output").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from .conftest import Server, start_server, write

httpclient = pytest.importorskip("tritonclient.http", reason="pip install 'tritonclient[http]'")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    pytest.importorskip("sklearn", reason="pip install 'endpointkit[sklearn]'")
    import joblib
    from sklearn.linear_model import LogisticRegression

    tmp = tmp_path_factory.mktemp("clf")
    (tmp / "model").mkdir()
    x = np.array([[-2.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    joblib.dump(LogisticRegression().fit(x, [0, 0, 1, 1]), tmp / "model" / "model.joblib")
    with start_server(tmp, ["--model-dir", str(tmp / "model")]) as server:
        yield server


def test_metadata_describes_what_infer_returns(classifier: Server) -> None:
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{classifier.port}")
    try:
        meta = client.get_model_metadata("model")  # before any infer: a warm-up call
        (declared,) = meta["outputs"]
        inp = httpclient.InferInput(meta["inputs"][0]["name"], [2, 2], "FP32")
        inp.set_data_from_numpy(np.array([[3, 0], [-3, 0]], dtype=np.float32))
        result = client.infer("model", [inp])
        (got,) = result.get_response()["outputs"]
        assert (declared["name"], declared["datatype"]) == (got["name"], got["datatype"])
        assert got["datatype"] == "INT64"
        assert result.as_numpy(got["name"]).tolist() == [1, 0]
    finally:
        client.close()


def test_unrequested_output_name_is_400(classifier: Server) -> None:
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{classifier.port}")
    try:
        inp = httpclient.InferInput("input-0", [1, 2], "FP32")
        inp.set_data_from_numpy(np.array([[3, 0]], dtype=np.float32))
        with pytest.raises(InferenceServerException, match="probabilities"):
            client.infer("model", [inp], outputs=[httpclient.InferRequestedOutput("probabilities")])
    finally:
        client.close()


PRICES = """
import numpy as np


class Prices:
    oip_metadata = {
        "inputs": [
            {"name": "rooms", "datatype": "FP32", "shape": [-1]},
            {"name": "area", "datatype": "FP32", "shape": [-1]},
        ],
        "outputs": [
            {"name": "price", "datatype": "FP64", "shape": [-1]},
            {"name": "band", "datatype": "INT64", "shape": [-1]},
        ],
    }

    def load(self, model_dir):
        pass

    def predict(self, instances, parameters=None):
        price = 10.0 * instances["rooms"] + 2.0 * instances["area"]
        return {"price": price.astype(np.float64), "band": (price > 50).astype(np.int64)}
"""


@pytest.fixture(scope="module")
def prices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("prices")
    model = write(tmp / "model", {"prices.py": PRICES})
    with start_server(tmp, ["--model-dir", str(model), "--predictor", "prices:Prices"]) as s:
        yield s


def _tensor(name: str, values: list[float]) -> dict[str, object]:
    return {"name": name, "datatype": "FP32", "shape": [len(values)], "data": values}


def test_unknown_input_is_400(prices: Server) -> None:
    body = {"inputs": [_tensor("rooms", [1]), _tensor("area", [2]), _tensor("garden", [3])]}
    r = prices.client.post("/v2/models/model/infer", json=body)
    assert r.status_code == 400, r.text
    assert "garden" in r.json()["error"]


def test_requested_outputs_by_name(prices: Server, tmp_path: Path) -> None:
    body = {
        "inputs": [_tensor("rooms", [1, 5]), _tensor("area", [2, 20])],
        "outputs": [{"name": "band"}],
    }
    r = prices.client.post("/v2/models/model/infer", json=body)
    assert r.status_code == 200, r.text
    (out,) = r.json()["outputs"]
    assert (out["name"], out["datatype"], out["data"]) == ("band", "INT64", [0, 1])
