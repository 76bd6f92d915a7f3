"""SageMaker inference-toolkit scripts, written as users write them, through the real server.

Sources: aws/sagemaker-inference-toolkit v1.10.1 ``src/sagemaker_inference/`` (``transformer.py``,
``default_inference_handler.py``, ``utils.py``, ``environment.py``, ``model_server.py``), and
aws/sagemaker-scikit-learn-container ``serving.py`` for the framework container's loading.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Server, start_server, write

# A typical script: JSON {"inputs": [...]} or CSV rows in, JSON out, errors as ValueError.
PRICING = """
import io
import json
import os

import numpy as np


def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.json")) as f:
        return np.array(json.load(f))


def input_fn(request_body, request_content_type):
    if request_content_type == "application/json":
        payload = json.loads(request_body)
        rows = payload["instances"] if "instances" in payload else payload["inputs"]
        if rows and isinstance(rows[0], dict):
            rows = [[row["rooms"], row["area"]] for row in rows]
        return np.array(rows, dtype=float)
    if request_content_type == "text/csv":
        return np.loadtxt(io.StringIO(request_body), delimiter=",", ndmin=2)
    raise ValueError(f"Unsupported content type: {request_content_type}")


def predict_fn(input_data, model):
    if input_data.shape[1] != model.shape[0]:
        raise ValueError(f"expected {model.shape[0]} features, got {input_data.shape[1]}")
    return input_data @ model


def output_fn(prediction, accept):
    if accept == "text/csv":
        return "\\n".join(str(x) for x in prediction.tolist()), "text/csv"
    return json.dumps({"predictions": prediction.tolist()}), "application/json"
"""


@pytest.fixture(scope="module")
def pricing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("pricing")
    model = write(tmp / "model", {"weights.json": "[10, 2]", "code/inference.py": PRICING})
    env = {"AIP_PREDICT_ROUTE": "/v1/endpoints/1/deployedModels/2:predict"}
    with start_server(tmp, ["--model-dir", str(model)], env) as server:
        yield server


# -- 3: exceptions from user code answer 500 -------------------------------------------------
@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b'{"inputs": [[1, 2, 3]]}', "application/json"),  # predict_fn raises ValueError
        (b"1 2", "text/plain"),  # input_fn raises ValueError
    ],
    ids=["predict_fn", "input_fn"],
)
def test_user_code_exception_is_500(pricing: Server, body: bytes, ctype: str) -> None:
    # transformer.py Transformer.transform: any exception that is not a
    # BaseInferenceToolkitError becomes GenericInferenceToolkitError(INTERNAL_SERVER_ERROR).
    r = pricing.client.post("/invocations", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 500, r.text
    assert r.json()["code"] == "predictor_error"
    assert "features" not in r.text  # runtime.map_exception: the text stays in the log
    assert r.headers["x-request-id"] in r.json()["error"]


def test_toolkit_status_error_keeps_its_status(tmp_path: Path) -> None:
    # errors.py BaseInferenceToolkitError(status_code, message, phrase); transformer.py
    # handle_error sets that status on the response.
    model = write(
        tmp_path / "model",
        {
            "code/inference.py": """
            class BaseInferenceToolkitError(Exception):
                def __init__(self, status_code, message, phrase):
                    self.status_code = status_code
                    self.message = message
                    self.phrase = phrase
                    super().__init__(status_code, message, phrase)

            def model_fn(model_dir):
                return None

            def predict_fn(data, model):
                raise BaseInferenceToolkitError(400, "rooms must be positive", "Bad Request")
            """
        },
    )
    with start_server(tmp_path, ["--model-dir", str(model)]) as server:
        r = server.client.post("/invocations", json=[[1, 2]])
        assert r.status_code == 400
        assert r.json()["error"] == "rooms must be positive"


# -- 4: Content-Type and Accept reach the hooks as the toolkit passes them -------------------
ECHO_HEADERS = """
import json


def model_fn(model_dir):
    return None


def input_fn(request_body, request_content_type):
    return {"content_type": request_content_type, "body": type(request_body).__name__}


def predict_fn(data, model):
    return data


def output_fn(prediction, accept):
    return json.dumps({**prediction, "accept": accept})
"""


@pytest.fixture(scope="module")
def echo_headers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("echo")
    model = write(tmp / "model", {"code/inference.py": ECHO_HEADERS})
    env = {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json"}
    with start_server(tmp, ["--model-dir", str(model)], env) as server:
        yield server


@pytest.mark.parametrize(
    ("headers", "seen"),
    [
        # transformer.py: content_type = utils.retrieve_content_type_header(...), the raw
        # header; the body is UTF-8 decoded only if content_type is in UTF8_TYPES, an exact
        # match (content_types.py: [JSON, CSV]), so a charset parameter leaves bytes.
        (
            {"Content-Type": "application/json; charset=utf-8"},
            {"content_type": "application/json; charset=utf-8", "body": "bytes"},
        ),
        ({"Content-Type": "text/csv"}, {"content_type": "text/csv", "body": "str"}),
        (
            {"Content-Type": "application/x-image"},
            {"content_type": "application/x-image", "body": "bytes"},
        ),
        # transformer.py: accept = request_property.get("Accept"), raw; only a missing or
        # exactly "*/*" Accept becomes environment.default_accept
        # (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT).
        (
            {"Content-Type": "text/csv", "Accept": "text/csv, application/json;q=0.5"},
            {"accept": "text/csv, application/json;q=0.5"},
        ),
        ({"Content-Type": "text/csv", "Accept": "*/*"}, {"accept": "application/json"}),
        ({"Content-Type": "text/csv"}, {"accept": "application/json"}),
    ],
)
def test_hooks_get_the_raw_headers(
    echo_headers: Server, headers: dict[str, str], seen: dict[str, str]
) -> None:
    r = echo_headers.client.post("/invocations", content=b"1,2", headers=headers)
    assert r.status_code == 200, r.text
    got = r.json()
    assert {k: got[k] for k in seen} == seen


def test_output_fn_without_type_answers_accept(echo_headers: Server) -> None:
    # transformer.py: a result that is not a tuple is sent with response_content_type = accept
    r = echo_headers.client.post(
        "/invocations", content=b"1", headers={"Content-Type": "text/csv", "Accept": "text/plain"}
    )
    assert r.headers["content-type"] == "text/plain"


# -- 5: the Vertex predict route hands any body to input_fn / output_fn ----------------------
def test_vertex_route_runs_input_fn_and_output_fn(pricing: Server) -> None:
    # Vertex rawPredict forwards any payload and Content-Type to AIP_PREDICT_ROUTE
    # (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints/rawPredict)
    route = "/v1/endpoints/1/deployedModels/2:predict"
    r = pricing.client.post(
        route, content=b"1,2\n3,4\n", headers={"Content-Type": "text/csv", "Accept": "text/csv"}
    )
    assert r.status_code == 200, r.text
    assert (r.headers["content-type"], r.text) == ("text/csv", "14.0\n38.0")
    # Vertex predict: {"instances": [...]} with dict instances, as input_fn expects them
    r = pricing.client.post(route, json={"instances": [{"rooms": 1, "area": 2}]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [14.0]}
