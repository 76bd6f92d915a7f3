"""Vertex AI Custom Prediction Routine predictors, as users write them, through the server.

Sources: google-cloud-aiplatform ``google/cloud/aiplatform/prediction/`` (``predictor.py``,
``handler.py``, ``model_server.py``, ``serializer.py``) and Vertex's rawPredict reference
(https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints/rawPredict).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import Server, start_server, write

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
