"""Issue 12 (reliability), serving side: every item talks HTTP to a real server process."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from .conftest import Server, predictor_server, start_server


# -- 7: client input that used to get 500 -------------------------------------------------
@pytest.fixture(scope="module")
def sklearn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    pytest.importorskip("sklearn", reason="pip install 'endpointkit[sklearn]'")
    import joblib
    from sklearn.linear_model import LogisticRegression

    tmp = tmp_path_factory.mktemp("sk")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    d = tmp / "model"
    d.mkdir()
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), d / "model.joblib")
    with start_server(tmp, ["--model-dir", str(d)]) as server:
        yield server


def _assert_client_error(r: httpx.Response, *words: str) -> None:
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    assert body["error"]
    assert body["code"]
    assert body["request_id"]
    for word in words:
        assert word in body["error"], body["error"]


def test_oip_int8_out_of_range_is_400(sklearn_server: Server) -> None:
    tensor = {"name": "x", "shape": [1, 4], "datatype": "INT8", "data": [1, 2, 300, 4]}
    r = sklearn_server.client.post("/v2/models/model/infer", json={"inputs": [tensor]})
    _assert_client_error(r, "'x'", "INT8")


def test_row_mixing_numbers_objects_and_nulls_is_4xx(sklearn_server: Server) -> None:
    r = sklearn_server.client.post("/invocations", json=[[1, {"a": 1}, None, 2]])
    _assert_client_error(r, "instance 0")
    # nulls alone are missing values, which numeric models take as NaN
    r = sklearn_server.client.post("/invocations", json=[[1, None, 2, 3]])
    assert r.status_code in (200, 422), r.text


def test_two_oip_inputs_to_a_single_input_model_is_4xx(sklearn_server: Server) -> None:
    a = {"name": "a", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
    b = {**a, "name": "b"}
    r = sklearn_server.client.post("/v2/models/model/infer", json={"inputs": [a, b]})
    _assert_client_error(r, "one input", "'a'", "'b'")
    assert sklearn_server.client.post("/invocations", json=[[1, 2, 3, 4]]).status_code == 200


# -- 8: predictor exception text never reaches the client ----------------------------------
@pytest.fixture(scope="module")
def leaky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with predictor_server(tmp_path_factory.mktemp("leaky"), "Leaky") as server:
        yield server


def _wait_log(server: Server, needle: str) -> str:
    for _ in range(100):
        text = server.log()
        if needle in text:
            return text
        threading.Event().wait(0.05)
    raise AssertionError(f"{needle!r} never logged:\n{server.log()[-2000:]}")


@pytest.mark.parametrize(("kind", "status"), [("value", 422), ("status503", 503)])
def test_predictor_exception_text_is_logged_not_sent(leaky: Server, kind: str, status: int) -> None:
    rid = f"leak-{kind}"
    r = leaky.client.post(
        "/predict",
        json={"instances": [[1]], "parameters": {"raise": kind}},
        headers={"X-Request-Id": rid},
    )
    assert r.status_code == status
    assert "hunter2" not in r.text
    body = r.json()
    assert body["request_id"] == rid
    assert rid in body["error"]  # the message tells the client what to quote
    log = _wait_log(leaky, rid)
    assert "hunter2" in log  # the detail is in the log, under the request id


def test_deliberate_4xx_message_still_reaches_the_client(leaky: Server) -> None:
    r = leaky.client.post(
        "/predict", json={"instances": [[1]], "parameters": {"raise": "status400"}}
    )
    assert r.status_code == 400
    assert "field 'age' must be positive" in r.json()["error"]
