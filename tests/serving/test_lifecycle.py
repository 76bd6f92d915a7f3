"""Health gating while loading, load failures, SIGTERM drain, startup flags and env."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx

from .conftest import predictor_server, start_server


def test_slow_loading_model_answers_503_until_ready(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    d = tmp_path / "model"
    d.mkdir()
    args = ["--model-dir", str(d), "--predictor", "predictors:GatedLoad"]
    with start_server(tmp_path, args, {"GATE_FILE": str(gate)}, ready=False) as s:
        for path in ("/ping", "/health", "/v2/health/ready", "/v2/models/model/ready"):
            assert s.client.get(path).status_code == 503
        r = s.client.get("/ping")
        assert r.json()["code"] == "model_loading"
        r = s.client.post("/invocations", json=[[1]])
        assert (r.status_code, r.json()["code"]) == (503, "model_loading")
        assert r.headers["retry-after"] == "1"  # loading ends by itself: say when to retry
        assert s.client.get("/v2/health/live").status_code == 200
        gate.write_text("go")
        s.wait_ready()
        assert s.client.post("/invocations", json=[[1, 2]]).json() == [3.0]


def test_failed_load_keeps_answering_503_with_reason(tmp_path: Path) -> None:
    d = tmp_path / "model"
    d.mkdir()
    args = ["--model-dir", str(d), "--predictor", "predictors:BrokenLoad"]
    with start_server(tmp_path, args, ready=False) as s:
        for _ in range(200):
            r = s.client.get("/ping")
            if r.json()["code"] == "model_load_failed":
                break
            threading.Event().wait(0.02)
        assert r.status_code == 503
        assert "weights file is corrupt" in r.json()["error"]
        assert s.client.get("/ping").status_code == 503  # still serving, still 503
        r = s.client.post("/predict", json={"instances": [1]})
        assert r.status_code == 503
        assert "corrupt" in r.json()["error"]
        assert "model_load_failed" in s.log()
        assert "weights file is corrupt" in s.log()


def test_no_model_found_is_reported(tmp_path: Path) -> None:
    d = tmp_path / "empty"
    d.mkdir()
    with start_server(tmp_path, ["--model-dir", str(d)], ready=False) as s:
        for _ in range(200):
            r = s.client.get("/ping")
            if r.json()["code"] == "model_load_failed":
                break
            threading.Event().wait(0.02)
        assert "No predictor found" in r.json()["error"]


def test_sigterm_drains_in_flight_requests(tmp_path: Path) -> None:
    with predictor_server(tmp_path, "Echo", "--grace", "20") as s:
        results: list[int] = []

        def call() -> None:
            r = httpx.post(
                s.url + "/predict",
                json={"instances": [1], "parameters": {"sleep": 0.5}},
                timeout=30,
            )
            results.append(r.status_code)

        threads = [threading.Thread(target=call) for _ in range(3)]
        for t in threads:
            t.start()
        for _ in range(1000):
            if s.metric("endpointkit_in_flight") >= 3:
                break
            threading.Event().wait(0.005)
        s.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=30)
        assert s.proc.wait(timeout=30) == 0
        assert results == [200, 200, 200]
        assert "server_stopped" in s.log()


def test_flags_override_env(tmp_path: Path) -> None:
    d = tmp_path / "model"
    d.mkdir()
    env = {"ENDPOINTKIT_PREDICTOR": "predictors:BrokenLoad", "ENDPOINTKIT_VERSION": "from-env"}
    args = ["--model-dir", str(d), "--predictor", "predictors:Sum", "--version", "from-flag"]
    with start_server(tmp_path, args, env) as s:
        r = s.client.post("/invocations", json=[[1, 1]])
        assert r.json() == [2.0]
        assert r.headers["x-endpointkit-version"] == "from-flag"


def test_two_workers(tmp_path: Path) -> None:
    d = tmp_path / "model"
    d.mkdir()
    args = ["--model-dir", str(d), "--predictor", "predictors:Sum", "--workers", "2"]
    with start_server(tmp_path, args) as s:
        for _ in range(10):
            assert s.client.post("/invocations", json=[[1, 2]]).json() == [3.0]
    assert s.proc.returncode == 0
