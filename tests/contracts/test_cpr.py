"""Vertex AI Custom Prediction Routine predictors, as users write them, through the server.

Sources: google-cloud-aiplatform ``google/cloud/aiplatform/prediction/`` (``predictor.py``,
``handler.py``, ``model_server.py``, ``serializer.py``) and Vertex's rawPredict reference
(https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints/rawPredict).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Server, load_error, start_server, wait_ready, write

ROUTE = "/v1/endpoints/1/deployedModels/2:predict"

# Duck-typed like CPR's Predictor (load / preprocess / predict / postprocess): CPR's handler.py
# only calls these methods.
SCORER = """
import json


class Scorer:
    def load(self, artifacts_uri):
        with open(artifacts_uri + "/scale.json") as f:
            self.scale = json.load(f)

    def preprocess(self, prediction_input):
        if isinstance(prediction_input, bytes):  # rawPredict with a CSV body
            return [float(x) for x in prediction_input.decode().split(",")]
        return prediction_input["instances"]

    def predict(self, instances):
        if any(x < 0 for x in instances):
            raise ValueError("negative score input")
        return [x * self.scale for x in instances]

    def postprocess(self, prediction_results):
        return {"predictions": prediction_results}
"""


@pytest.fixture(scope="module")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("scorer")
    model = write(tmp / "model", {"scale.json": "3", "predictor.py": SCORER})
    env = {"AIP_STORAGE_URI": str(model), "AIP_PREDICT_ROUTE": ROUTE}
    with start_server(tmp, [], env) as server:
        yield server


def test_predictor_exception_is_500(scorer: Server) -> None:
    # handler.py PredictionHandler.handle: any exception but HTTPException ->
    # HTTPException(status_code=500); model_server.py predict does the same.
    assert scorer.client.post(ROUTE, json={"instances": [1]}).json() == {"predictions": [3]}
    r = scorer.client.post(ROUTE, json={"instances": [-1]})
    assert r.status_code == 500, r.text
    assert r.json()["code"] == "predictor_error"
    assert "negative" not in r.text  # runtime.map_exception: the text stays in the log


def test_raw_predict_body_reaches_preprocess(scorer: Server) -> None:
    # rawPredict forwards any Content-Type to AIP_PREDICT_ROUTE; the container decodes it.
    r = scorer.client.post(ROUTE, content=b"1,2", headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [3.0, 6.0]}


# -- 6: a Predictor subclass needs FastAPI (google-cloud-aiplatform[prediction]) -------------
SUBCLASS = """
import os

import joblib
from google.cloud.aiplatform.prediction.predictor import Predictor


class ChurnPredictor(Predictor):
    def load(self, artifacts_uri):
        self._model = joblib.load(os.path.join(artifacts_uri, "model.joblib"))

    def preprocess(self, prediction_input):
        return prediction_input["instances"]

    def predict(self, instances):
        return self._model.predict(instances)

    def postprocess(self, prediction_results):
        return {"predictions": prediction_results.tolist()}
"""


def _churn_model(tmp_path: Path) -> Path:
    pytest.importorskip("sklearn", reason="pip install 'endpointkit[sklearn]'")
    import joblib
    from sklearn.tree import DecisionTreeClassifier

    model = write(tmp_path / "model", {"predictor.py": SUBCLASS})
    joblib.dump(DecisionTreeClassifier().fit([[0], [1]], [0, 1]), model / "model.joblib")
    return model


def test_cpr_predictor_subclass_with_joblib(tmp_path: Path) -> None:
    # predictor.py: Predictor.load(artifacts_uri) gets AIP_STORAGE_URI; the default handler
    # runs postprocess(predict(preprocess(body))) (handler.py).
    pytest.importorskip("fastapi", reason="pip install 'endpointkit[cpr]'")
    model = _churn_model(tmp_path)
    env = {"AIP_STORAGE_URI": str(model), "AIP_PREDICT_ROUTE": ROUTE}
    with start_server(tmp_path, [], env, ready=False) as server:
        wait_ready(server)
        r = server.client.post(ROUTE, json={"instances": [[1], [0]]})
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": [1, 0]}


def test_http_exception_keeps_its_status(tmp_path: Path) -> None:
    # handler.py / model_server.py: "except HTTPException: raise" - its status reaches the client
    pytest.importorskip("fastapi", reason="pip install 'endpointkit[cpr]'")
    model = write(
        tmp_path / "model",
        {
            "predictor.py": """
            from fastapi import HTTPException
            from google.cloud.aiplatform.prediction.predictor import Predictor


            class Strict(Predictor):
                def load(self, artifacts_uri):
                    pass

                def preprocess(self, prediction_input):
                    if not prediction_input["instances"]:
                        raise HTTPException(status_code=400, detail="no instances")
                    return prediction_input["instances"]

                def predict(self, instances):
                    return instances
            """
        },
    )
    with start_server(tmp_path, [], {"AIP_STORAGE_URI": str(model)}, ready=False) as server:
        wait_ready(server)
        r = server.client.post("/predict", json={"instances": []})
        assert (r.status_code, r.json()["error"]) == (400, "no instances")


def test_missing_fastapi_names_the_extra(tmp_path: Path) -> None:
    model = _churn_model(tmp_path)
    # an image without FastAPI: a package that fails to import, first on the path
    write(tmp_path / "nofastapi", {"fastapi/__init__.py": "raise ImportError('no fastapi')"})
    env = {"AIP_STORAGE_URI": str(model), "PYTHONPATH": str(tmp_path / "nofastapi")}
    with start_server(tmp_path, [], env, ready=False) as server:
        assert "endpointkit[cpr]" in load_error(server)
