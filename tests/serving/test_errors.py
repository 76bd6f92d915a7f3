"""Bad inputs get their documented status and a JSON error with a stable code and the request
id, and the server keeps serving."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from .conftest import Server, predictor_server


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("errors")
    with predictor_server(tmp, "Echo") as server:
        yield server


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.zeros(2))
    return buf.getvalue()


JSON = {"Content-Type": "application/json"}
CASES: list[tuple[str, str, str, dict[str, str], bytes, int, str]] = [
    ("malformed json", "POST", "/invocations", JSON, b'{"instances": [1,', 400, "malformed_json"),
    (
        "malformed csv",
        "POST",
        "/invocations",
        {"Content-Type": "text/csv"},
        b"1,2\n3\n",
        400,
        "malformed_csv",
    ),
    (
        "malformed npy",
        "POST",
        "/invocations",
        {"Content-Type": "application/x-npy"},
        b"NUMPY?",
        400,
        "malformed_npy",
    ),
    (
        "truncated npy",
        "POST",
        "/invocations",
        {"Content-Type": "application/x-npy"},
        _npy()[:-4],
        400,
        "malformed_npy",
    ),
    (
        "instances not a list",
        "POST",
        "/invocations",
        JSON,
        b'{"instances": 3}',
        400,
        "bad_instances",
    ),
    (
        "unsupported type",
        "POST",
        "/invocations",
        {"Content-Type": "application/xml"},
        b"<a/>",
        415,
        "unsupported_media_type",
    ),
    (
        "unacceptable accept",
        "POST",
        "/invocations",
        {**JSON, "Accept": "image/png"},
        b"[1]",
        406,
        "not_acceptable",
    ),
    ("predictor rejects", "POST", "/invocations", JSON, b'["bad"]', 422, "predictor_rejected"),
    ("predictor crashes", "POST", "/invocations", JSON, b'["crash"]', 500, "predictor_error"),
    ("vertex not an object", "POST", "/predict", JSON, b"[1, 2]", 400, "bad_instances"),
    ("vertex no instances", "POST", "/predict", JSON, b'{"inputs": [1]}', 400, "bad_instances"),
    (
        "vertex bad parameters",
        "POST",
        "/predict",
        JSON,
        b'{"instances": [1], "parameters": 3}',
        400,
        "bad_parameters",
    ),
    ("vertex malformed json", "POST", "/predict", JSON, b"{", 400, "malformed_json"),
    (
        "vertex wrong type",  # rawPredict takes any type the predictor decodes; not this one
        "POST",
        "/predict",
        {"Content-Type": "application/x-thing"},
        b"1",
        415,
        "unsupported_media_type",
    ),
    ("vertex crash", "POST", "/predict", JSON, b'{"instances": ["crash"]}', 500, "predictor_error"),
    ("oip malformed", "POST", "/v2/models/model/infer", JSON, b"{", 400, "malformed_json"),
    (
        "oip bad datatype",
        "POST",
        "/v2/models/model/infer",
        JSON,
        b'{"inputs":[{"name":"a","shape":[1],"datatype":"FP99","data":[1]}]}',
        400,
        "bad_tensor",
    ),
    ("oip unknown model", "POST", "/v2/models/zzz/infer", JSON, b"{}", 404, "not_found"),
    ("unknown route", "GET", "/nope", {}, b"", 404, "not_found"),
    ("wrong method", "GET", "/invocations", {}, b"", 405, "method_not_allowed"),
    (
        "binary header too big",
        "POST",
        "/v2/models/model/infer",
        {"Inference-Header-Content-Length": "999"},
        b"{}",
        400,
        "bad_request",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "code"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_input_table(
    echo: Server,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    code: str,
) -> None:
    r = echo.client.request(
        method, path, content=body, headers={**headers, "X-Request-Id": "req-7"}
    )
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    payload = r.json()
    assert payload["code"] == code
    assert payload["request_id"] == "req-7"
    assert isinstance(payload["error"], str)
    assert payload["error"]
    assert "Traceback" not in r.text
    # the server keeps serving
    assert echo.client.post("/invocations", json=[1]).json() == [1]


def test_crash_is_logged_with_traceback_but_not_sent(echo: Server) -> None:
    r = echo.client.post("/invocations", json=["crash"], headers={"X-Request-Id": "crash-1"})
    assert r.status_code == 500
    assert "secret internal detail" not in r.text
    deadline_log = echo.log()
    for _ in range(100):
        if "crash-1" in deadline_log and "Traceback" in deadline_log:
            break
        threading.Event().wait(0.05)
        deadline_log = echo.log()
    assert "secret internal detail" in deadline_log
    assert "Traceback" in deadline_log


def _raw_request(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_too_large_is_rejected_before_the_body_is_read(echo: Server) -> None:
    # Content-Length says 100 MB and no body follows: the answer must come anyway.
    head = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 104857600\r\n\r\n"
    )
    answer = _raw_request(echo.port, head)
    assert answer.startswith(b"HTTP/1.1 413")
    assert echo.client.post("/invocations", json=[2]).json() == [2]


def test_too_large_chunked_stream(echo: Server) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b"["
        for _ in range(64):  # up to 8 MB, stops early if the server answers
            sent += 1
            yield b"1," * 65536
        yield b"1]"

    try:
        r = echo.client.post("/invocations", content=chunks(), headers=JSON)
        assert r.status_code == 413
    except httpx.TransportError:
        pass  # the server may close before the client finishes writing; both are rejections
    assert echo.client.post("/invocations", json=[3]).json() == [3]


def test_schema_violation_names_instance_and_field(tmp_path: Path) -> None:
    with predictor_server(tmp_path, "Schema") as s:
        good = {"age": 3, "name": "x"}
        r = s.client.post("/predict", json={"instances": [good, {"age": "old", "name": "y"}]})
        assert r.status_code == 422
        body = r.json()
        assert body["code"] == "schema_violation"
        assert "instance 1" in body["error"]
        assert "age" in body["error"]
        assert s.client.post("/predict", json={"instances": [good]}).json() == {
            "predictions": [good]
        }


def test_json_schema(tmp_path: Path) -> None:
    pytest.importorskip("jsonschema")
    with predictor_server(tmp_path, "JsonSchema") as s:
        r = s.client.post("/invocations", json={"instances": [{"x": 1}, {"x": "a"}]})
        assert r.status_code == 422
        assert "instance 1" in r.json()["error"]
        assert "'x'" in r.json()["error"]


def test_shape_violation(tmp_path: Path) -> None:
    with predictor_server(tmp_path, "Shape") as s:
        r = s.client.post("/predict", json={"instances": [[1, 2, 3, 4], [1, 2, 3]]})
        assert r.status_code == 422
        assert r.json()["code"] == "shape_mismatch"
        assert "instance 1" in r.json()["error"]
        assert "expected 4 values" in r.json()["error"]
        r = s.client.post("/invocations", content=b"1,2\n", headers={"Content-Type": "text/csv"})
        assert r.status_code == 422


def _post_async(url: str, payload: Any, results: list[httpx.Response]) -> threading.Thread:
    def run() -> None:
        results.append(httpx.post(url, json=payload, timeout=30))

    t = threading.Thread(target=run)
    t.start()
    return t


def _wait_in_flight(server: Server, n: int) -> None:
    for _ in range(500):
        if server.metric("endpointkit_in_flight") >= n:
            return
        threading.Event().wait(0.01)
    raise AssertionError("requests never became in-flight")


def test_overloaded_gets_503_with_retry_after(tmp_path: Path) -> None:
    with predictor_server(tmp_path, "Echo", "--max-in-flight", "1") as s:
        results: list[httpx.Response] = []
        t = _post_async(
            s.url + "/predict", {"instances": [1], "parameters": {"sleep": 1.0}}, results
        )
        try:
            _wait_in_flight(s, 1)
            r = s.client.post("/predict", json={"instances": [2]})
            assert r.status_code == 503
            assert r.headers["retry-after"] == "1"
            assert r.json()["code"] == "overloaded"
            assert s.client.get("/ping").status_code == 200  # health is never limited
            assert s.client.get("/v2/models/model/ready").status_code == 200
        finally:
            t.join(timeout=30)
        assert results[0].status_code == 200
        assert s.client.post("/predict", json={"instances": [2]}).status_code == 200


def test_timeout_gets_504(tmp_path: Path) -> None:
    with predictor_server(tmp_path, "Echo", "--timeout", "0.3", "--grace", "2") as s:
        r = s.client.post("/predict", json={"instances": [1], "parameters": {"sleep": 1}})
        assert r.status_code == 504
        assert r.json()["code"] == "timeout"
        # the call still holds the model thread: the worker says so and is replaced
        # (test_reliability.py covers the replacement)
        try:
            r = s.client.post("/predict", json={"instances": [1]})
            assert (r.status_code, r.json()["code"]) == (503, "model_stuck")
            assert r.headers["retry-after"]
        except httpx.TransportError:
            pass  # the worker already left


def test_custom_content_types(tmp_path: Path) -> None:
    with predictor_server(tmp_path, "CustomTypes") as s:
        r = s.client.post(
            "/invocations",
            content=b"1 2 3",
            headers={"Content-Type": "application/x-numbers", "Accept": "text/plain"},
        )
        assert r.status_code == 200
        assert (r.text, r.headers["content-type"]) == ("6.0", "text/plain")


def test_preprocess_and_postprocess(tmp_path: Path) -> None:
    with predictor_server(tmp_path, "PrePost") as s:
        assert s.client.post("/predict", json={"instances": [[1.2, 1]]}).json() == {
            "predictions": [4]
        }
