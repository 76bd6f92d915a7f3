"""The image as Vertex AI runs it: AIP_HTTP_PORT, AIP_HEALTH_ROUTE, AIP_PREDICT_ROUTE and
AIP_STORAGE_URI (a local path here; gs:// needs the vertex extra), started with the image's own
ENTRYPOINT/CMD (shared/research/vertex.md section 1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import IRIS_CLASSES, IRIS_ROWS, Runner, free_port

pytestmark = pytest.mark.container

# A Custom Prediction Routine predictor (google.cloud.aiplatform.prediction.Predictor's
# shape, without the SDK): preprocess gets the whole body, postprocess returns the whole answer.
CPR_PREDICTOR = """
import os
import joblib
import numpy as np

class IrisPredictor:
    def load(self, artifacts_uri):
        self._model = joblib.load(os.path.join(artifacts_uri, "model.joblib"))

    def preprocess(self, prediction_input):
        return np.asarray(prediction_input["instances"], dtype=float)

    def predict(self, instances):
        return self._model.predict(instances)

    def postprocess(self, prediction_results):
        return {"predictions": [["setosa", "versicolor", "virginica"][int(c)]
                                for c in prediction_results]}
"""


def vertex_env(port: int, storage: str) -> dict[str, str]:
    return {
        "AIP_HTTP_PORT": str(port),
        "AIP_HEALTH_ROUTE": "/v1/endpoints/123/deployedModels/456",
        "AIP_PREDICT_ROUTE": "/v1/endpoints/123/deployedModels/456:predict",
        "AIP_STORAGE_URI": storage,
        "AIP_MODE": "PREDICTION",
        "AIP_MODE_VERSION": "1.0.0",
        "AIP_FRAMEWORK": "CUSTOM_CONTAINER",
        "AIP_ENDPOINT_ID": "123",
        "AIP_DEPLOYED_MODEL_ID": "456",
        "AIP_MODEL_NAME": "123",
        "AIP_PROJECT_NUMBER": "1234567890",
        "AIP_MACHINE_TYPE": "n1-standard-2",
    }


def test_cpr_predictor(
    run_container: Runner, iris_model: Path, model_dir: Callable[[dict[str, str]], Path]
) -> None:
    d = model_dir({"predictor.py": CPR_PREDICTOR})
    (d / "model.joblib").write_bytes((iris_model / "model.joblib").read_bytes())
    (d / "model.joblib").chmod(0o644)
    port = free_port()
    env = vertex_env(port, "/tmp_cpr_local_model")  # where CPR's LocalEndpoint mounts it
    box = run_container(None, env, {d: "/tmp_cpr_local_model"}, port=port, ready=None)
    box.wait_ready(env["AIP_HEALTH_ROUTE"])
    r = box.client.post(env["AIP_PREDICT_ROUTE"], json={"instances": IRIS_ROWS})
    assert r.status_code == 200, r.text + box.logs()
    assert r.json() == {"predictions": ["setosa", "virginica"]}


def test_builtin_artifact_with_parameters(run_container: Runner, iris_model: Path) -> None:
    port = free_port()
    env = {**vertex_env(port, "/models/iris"), "AIP_HEALTH_ROUTE": "/health",
           "AIP_PREDICT_ROUTE": "/predict"}  # fmt: skip
    box = run_container(None, env, {iris_model: "/models/iris"}, port=port, ready="/health")
    r = box.client.post("/predict", json={"instances": IRIS_ROWS})
    assert r.json() == {"predictions": IRIS_CLASSES}
    r = box.client.post(
        "/predict", json={"instances": IRIS_ROWS, "parameters": {"method": "predict_proba"}}
    )
    assert r.status_code == 200
    assert [len(p) for p in r.json()["predictions"]] == [3, 3]
