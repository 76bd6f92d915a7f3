"""SageMaker hosting contract over real HTTP against the real server process."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from .conftest import Server, free_port, start_server


@pytest.fixture(scope="module")
def sm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("sm")
    (tmp / "model").mkdir()
    port = free_port()
    env = {"SAGEMAKER_BIND_TO_PORT": str(port), "ENDPOINTKIT_VERSION": "blue"}
    args = ["serve", "--model-dir", str(tmp / "model"), "--predictor", "predictors:Echo"]
    with start_server(tmp, args, env, port_flag=False) as server:
        yield server


def test_port_comes_from_sagemaker_bind_to_port(sm: Server) -> None:
    r = sm.client.get("/ping")
    assert r.status_code == 200
    assert r.content == b""


def test_version_header_and_request_id_echo(sm: Server) -> None:
    r = sm.client.get("/ping", headers={"X-Request-Id": "abc-123"})
    assert r.headers["x-endpointkit-version"] == "blue"
    assert r.headers["x-request-id"] == "abc-123"
    r = sm.client.get("/ping", headers={"X-Amzn-SageMaker-Inference-Id": "inf-9"})
    assert r.headers["x-request-id"] == "inf-9"
    generated = sm.client.get("/ping").headers["x-request-id"]
    assert generated
    assert generated != sm.client.get("/ping").headers["x-request-id"]


def test_json_instances_wrapped(sm: Server) -> None:
    r = sm.client.post("/invocations", json={"instances": [[1, 2], {"a": 1}]})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"predictions": [[1, 2], {"a": 1}]}


def test_json_list_and_single_value(sm: Server) -> None:
    assert sm.client.post("/invocations", json=[1, 2, 3]).json() == [1, 2, 3]
    assert sm.client.post("/invocations", json={"x": 1}).json() == {"x": 1}


def test_csv_in_csv_out(sm: Server) -> None:
    r = sm.client.post(
        "/invocations",
        content=b"1,2\n3,4\n",
        headers={"Content-Type": "text/csv", "Accept": "text/csv"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv"
    assert r.text == "1.0,2.0\n3.0,4.0\n"


def test_npy_in_npy_out(sm: Server) -> None:
    buf = io.BytesIO()
    np.save(buf, np.arange(6, dtype=np.float32).reshape(3, 2))
    r = sm.client.post(
        "/invocations",
        content=buf.getvalue(),
        headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"},
    )
    assert r.status_code == 200
    out = np.load(io.BytesIO(r.content))
    assert out.dtype == np.float32
    assert out.tolist() == [[0, 1], [2, 3], [4, 5]]


def test_octet_stream_roundtrip(sm: Server) -> None:
    r = sm.client.post(
        "/invocations",
        content=b"\x00\x01raw",
        headers={"Content-Type": "application/octet-stream", "Accept": "application/octet-stream"},
    )
    assert r.status_code == 200
    assert r.content == b"\x00\x01raw"


def test_accept_negotiation_with_q_values(sm: Server) -> None:
    r = sm.client.post(
        "/invocations",
        json=[[1, 2]],
        headers={"Accept": "application/xml;q=1, text/csv;q=0.5, application/json;q=0.4"},
    )
    assert r.headers["content-type"] == "text/csv"
    r = sm.client.post("/invocations", json=[[1]], headers={"Accept": "*/*"})
    assert r.headers["content-type"] == "application/json"


def test_custom_attributes_reach_predictor_and_come_back(sm: Server) -> None:
    r = sm.client.post(
        "/invocations",
        json=[1],
        headers={"X-Amzn-SageMaker-Custom-Attributes": "trace=1"},
    )
    assert r.status_code == 200
    assert r.headers["x-amzn-sagemaker-custom-attributes"] == "seen=trace=1"


def test_unknown_headers_are_ignored(sm: Server) -> None:
    r = sm.client.post("/invocations", json=[1], headers={"X-Whatever": "x", "X-Amzn-Foo": "y"})
    assert r.status_code == 200


def test_execution_parameters(sm: Server) -> None:
    r = sm.client.get("/execution-parameters")
    assert r.status_code == 200
    assert r.json() == {
        "MaxConcurrentTransforms": 1,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


def test_default_limit_is_6_mb_for_invocations(sm: Server) -> None:
    big = b"[" + b"1," * (3 * 1024 * 1024 - 2) + b"1]"  # just under 6 MB
    assert len(big) <= 6 * 1024 * 1024
    r = sm.client.post("/invocations", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    r = sm.client.post(
        "/invocations", content=big + b" " * 10, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413


def test_metrics_count_requests_with_version_label(sm: Server) -> None:
    sm.client.post("/invocations", json=[1])
    text = sm.client.get("/metrics").text
    assert 'route="invocations",status="200"' in text
    assert 'version="blue"' in text
    assert "endpointkit_request_duration_seconds_bucket" in text
    assert "endpointkit_in_flight" in text


def test_toolkit_script(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "code").mkdir(parents=True)
    (model / "weights.txt").write_text("3")
    (model / "code" / "inference.py").write_text(
        "import numpy as np\n"
        "def model_fn(model_dir):\n"
        "    return float(open(model_dir + '/weights.txt').read())\n"
        "def predict_fn(data, model):\n"
        "    if (np.asarray(data) < 0).any():\n"
        "        raise ValueError('negative input')\n"
        "    return np.asarray(data) * model\n"
    )
    with start_server(tmp_path, ["--model-dir", str(model)]) as server:
        r = server.client.post("/invocations", json=[[1, 2]])
        assert r.status_code == 200
        assert r.json() == [[3.0, 6.0]]
        r = server.client.post(
            "/invocations",
            content=b"1,2\n3,4\n",
            headers={"Content-Type": "text/csv", "Accept": "text/csv"},
        )
        assert r.headers["content-type"] == "text/csv"
        assert r.text.split() == ["3.0,6.0", "9.0,12.0"]
        r = server.client.post("/invocations", json=[[-1]])
        assert r.status_code == 500  # the toolkit answers 500 for the script's ValueError
        # the Vertex route runs predict_fn on the decoded instances
        assert server.client.post("/predict", json={"instances": [1, 2]}).json() == {
            "predictions": [3.0, 6.0]
        }


def test_toolkit_transform_fn_and_status_code_errors(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "code").mkdir(parents=True)
    (model / "code" / "inference.py").write_text(
        "class ToolkitError(Exception):\n"
        "    def __init__(self, status_code, message):\n"
        "        super().__init__(message)\n"
        "        self.status_code = status_code\n"
        "        self.message = message\n"
        "def model_fn(model_dir, context):\n"
        "    assert context.system_properties['model_dir'] == model_dir\n"
        "    return 'm'\n"
        "def transform_fn(model, data, content_type, accept):\n"
        "    if data == 'teapot':\n"
        "        raise ToolkitError(418, 'short and stout')\n"
        "    return data.upper(), 'text/plain'\n"
    )
    with start_server(tmp_path, ["--model-dir", str(model)]) as server:
        r = server.client.post(
            "/invocations", content=b"hello", headers={"Content-Type": "text/csv"}
        )
        assert (r.status_code, r.text, r.headers["content-type"]) == (200, "HELLO", "text/plain")
        r = server.client.post(
            "/invocations", content=b"teapot", headers={"Content-Type": "text/csv"}
        )
        assert r.status_code == 418
        assert r.json()["error"] == "short and stout"
