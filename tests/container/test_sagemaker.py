"""The image as SageMaker runs it: `docker run <image> serve`, the model extracted to a
read-only /opt/ml/model, port 8080 (or SAGEMAKER_BIND_TO_PORT), SAGEMAKER_* variables, and
SIGTERM then SIGKILL 30 s later (shared/research/sagemaker.md section 1)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import IRIS_CLASSES, IRIS_ROWS, Container, Runner, free_port, podman

pytestmark = pytest.mark.container

SAGEMAKER_ENV = {
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
    "SAGEMAKER_REGION": "eu-west-1",
    "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
    "SAGEMAKER_MODEL_SERVER_TIMEOUT": "60",
}


@pytest.fixture(scope="module")
def sm(image: str, iris_model: Path) -> Iterator[Container]:
    """The iris model on port 8080, started exactly as SageMaker starts it."""
    runner = Runner(image)
    try:
        yield runner(["serve"], SAGEMAKER_ENV, {iris_model: "/opt/ml/model"})
    finally:
        runner.close()


def test_ping(sm: Container) -> None:
    r = sm.client.get("/ping")
    assert r.status_code == 200


def test_invocations_json(sm: Container) -> None:
    r = sm.client.post("/invocations", json={"instances": IRIS_ROWS})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"predictions": IRIS_CLASSES}


def test_invocations_csv(sm: Container) -> None:
    body = "".join(",".join(map(str, row)) + "\n" for row in IRIS_ROWS)
    r = sm.client.post(
        "/invocations",
        content=body.encode(),
        headers={"Content-Type": "text/csv", "Accept": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv"
    assert r.text.split() == [str(c) for c in IRIS_CLASSES]


def test_unknown_headers_are_ignored_and_errors_are_json(sm: Container) -> None:
    r = sm.client.post(
        "/invocations",
        json={"instances": [[1.0, 2.0, 3.0]]},  # 3 features, the model wants 4
        headers={"X-Amzn-SageMaker-Something-New": "x", "X-Amzn-SageMaker-Inference-Id": "1"},
    )
    assert r.status_code == 422
    assert "error" in r.json()


def test_execution_parameters(sm: Container) -> None:
    r = sm.client.get("/execution-parameters")
    assert r.status_code == 200
    assert r.json()["BatchStrategy"] in ("MULTI_RECORD", "SINGLE_RECORD")


def test_runs_as_non_root_and_model_is_read_only(sm: Container) -> None:
    out = sm.exec("id", "-u")
    assert out.returncode == 0, out
    assert out.stdout.strip() != "0"
    out = sm.exec("touch", "/opt/ml/model/x")
    assert out.returncode != 0


def test_bind_to_port(run_container: Runner, iris_model: Path) -> None:
    port = free_port()
    box = run_container(
        ["serve"],
        {**SAGEMAKER_ENV, "SAGEMAKER_BIND_TO_PORT": str(port)},
        {iris_model: "/opt/ml/model"},
        port=port,
    )
    assert box.client.post("/invocations", json={"instances": IRIS_ROWS}).status_code == 200


TOOLKIT_SCRIPT = """
import json, os
import joblib
import numpy as np

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))

def input_fn(body, content_type):
    assert content_type == "application/json", content_type
    return np.asarray(json.loads(body)["rows"], dtype=float)

def predict_fn(data, model):
    return model.predict(data)

def output_fn(prediction, accept):
    return json.dumps({"classes": [int(c) for c in prediction]}), "application/json"
"""


def test_toolkit_script(
    run_container: Runner, iris_model: Path, model_dir: Callable[[dict[str, str]], Path]
) -> None:
    """code/inference.py with the sagemaker-inference-toolkit hooks, next to the artifact.
    (A code/requirements.txt is not installed by the server yet: see containers/README.md.)"""
    d = model_dir({"code/inference.py": TOOLKIT_SCRIPT})
    (d / "model.joblib").write_bytes((iris_model / "model.joblib").read_bytes())
    (d / "model.joblib").chmod(0o644)
    port = free_port()
    env = {**SAGEMAKER_ENV, "SAGEMAKER_BIND_TO_PORT": str(port)}
    box = run_container(["serve"], env, {d: "/opt/ml/model"}, port=port)
    r = box.client.post("/invocations", json={"rows": IRIS_ROWS})
    assert r.status_code == 200, r.text + box.logs()
    assert r.json() == {"classes": IRIS_CLASSES}


def test_sigterm_exits_zero_within_the_grace_period(
    run_container: Runner, iris_model: Path
) -> None:
    """SageMaker sends SIGTERM and kills 30 s later: the server (PID 1) must exit 0 before."""
    port = free_port()
    box = run_container(
        ["serve"],
        {**SAGEMAKER_ENV, "SAGEMAKER_BIND_TO_PORT": str(port)},
        {iris_model: "/opt/ml/model"},
        port=port,
    )
    assert box.client.post("/invocations", json={"instances": IRIS_ROWS}).status_code == 200
    started = time.monotonic()
    # podman stop sends SIGTERM and would SIGKILL after 30 s, as SageMaker does.
    podman("stop", "--time", "30", box.name, timeout=60)
    took = time.monotonic() - started
    state = box.state()
    assert state["ExitCode"] == 0, (state, box.logs())
    assert took < 30, f"stopped after {took:.1f} s: SIGKILL, not a clean exit"
