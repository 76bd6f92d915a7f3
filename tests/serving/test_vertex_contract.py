"""Vertex AI custom-container contract: AIP_* environment, instances in, predictions out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Server, free_port, start_server

HEALTH = "/v1/endpoints/123/deployedModels/456"
PREDICT = "/v1/endpoints/123/deployedModels/456:predict"


@pytest.fixture(scope="module")
def vx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("vx")
    (tmp / "model").mkdir()
    port = free_port()
    env = {
        "AIP_HTTP_PORT": str(port),
        "AIP_HEALTH_ROUTE": HEALTH,
        "AIP_PREDICT_ROUTE": PREDICT,
        "AIP_STORAGE_URI": str(tmp / "model"),
        "AIP_MODE": "PREDICTION",
        "ENDPOINTKIT_PREDICTOR": "predictors:Echo",
    }
    with start_server(tmp, [], env, ready=False, port_flag=False) as server:
        server.wait_ready(HEALTH)
        yield server


def test_health_route_from_env(vx: Server) -> None:
    assert vx.client.get(HEALTH).status_code == 200
    assert vx.client.get("/health").status_code == 200  # the CPR default too


def test_predict_route_from_env(vx: Server) -> None:
    r = vx.client.post(PREDICT, json={"instances": [1, "a", {"b": [2]}], "parameters": {"k": 1}})
    assert r.status_code == 200
    assert r.json() == {"predictions": [1, "a", {"b": [2]}]}


def test_default_predict_route(vx: Server) -> None:
    assert vx.client.post("/predict", json={"instances": [[1.5]]}).json() == {
        "predictions": [[1.5]]
    }


def test_one_prediction_per_instance_is_enforced(tmp_path: Path) -> None:
    d = tmp_path / "model"
    d.mkdir()
    with start_server(
        tmp_path, ["--model-dir", str(d), "--predictor", "predictors:WrongCount"]
    ) as s:
        r = s.client.post("/predict", json={"instances": [[1], [2]]})
        assert r.status_code == 500
        assert r.json()["code"] == "predictor_output"
        assert "1 predictions for 2 instances" in r.json()["error"]


def test_vertex_limit_is_1_5_mb(vx: Server) -> None:
    body = b'{"instances": [' + b"1," * 800_000 + b"1]}"
    assert len(body) > 1_572_864
    r = vx.client.post(PREDICT, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"
    # the same body is fine for SageMaker's 6 MB
    r = vx.client.post("/invocations", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200


def test_vertex_limit_is_configurable(tmp_path: Path) -> None:
    d = tmp_path / "model"
    d.mkdir()
    env = {"ENDPOINTKIT_VERTEX_MAX_REQUEST_BYTES": str(10 * 1024 * 1024)}
    with start_server(
        tmp_path, ["--model-dir", str(d), "--predictor", "predictors:Echo"], env
    ) as s:
        body = b'{"instances": [' + b"1," * 800_000 + b"1]}"
        r = s.client.post("/predict", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 200
        assert len(r.json()["predictions"]) == 800_001


def test_cpr_style_predictor(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "factor.txt").write_text("10")
    (model / "predictor.py").write_text(
        "class MyPredictor:\n"
        "    def load(self, artifacts_uri):\n"
        "        self.factor = int(open(artifacts_uri + '/factor.txt').read())\n"
        "    def preprocess(self, prediction_input):\n"
        "        return [x * self.factor for x in prediction_input['instances']]\n"
        "    def predict(self, instances):\n"
        "        return [x + 1 for x in instances]\n"
        "    def postprocess(self, prediction_results):\n"
        "        return {'predictions': prediction_results}\n"
    )
    env = {"AIP_STORAGE_URI": str(model)}
    with start_server(tmp_path, [], env) as server:
        r = server.client.post("/predict", json={"instances": [1, 2]})
        assert r.json() == {"predictions": [11, 21]}
        # the same model over SageMaker's route
        assert server.client.post("/invocations", json={"instances": [3]}).json() == {
            "predictions": [31]
        }
