"""load_predictor: the loading order, built-ins, clear errors, and a light import."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from endpointkit.serving import MissingExtraError, Predictor, PredictorLoadError, load_predictor
from endpointkit.serving.predictor import PredictorOptions

from .conftest import ROOT, start_server


def test_predictor_module_imports_without_the_server_stack() -> None:
    code = (
        "import sys\n"
        "for m in ('orjson', 'uvicorn', 'numpy', 'httptools', 'uvloop', 'boto3', 'google'):\n"
        "    sys.modules[m] = None\n"
        "from endpointkit.serving.predictor import load_predictor, Predictor\n"
        "import endpointkit.serving\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_explicit_predictor_argument_and_env(tmp_path: Path) -> None:
    p = load_predictor(tmp_path, predictor="tests.serving.predictors:Sum")
    assert isinstance(p, Predictor)
    assert p.predict([[1, 2]]) == [3.0]
    p = load_predictor(tmp_path, env={"ENDPOINTKIT_PREDICTOR": "tests.serving.predictors:Echo"})
    assert p.predict(["a"]) == ["a"]


def test_explicit_predictor_from_model_dir(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "my_model.py").write_text(
        "class P:\n"
        "    max_batch_size = 8\n"
        "    def load(self, model_dir): self.k = 2\n"
        "    def predict(self, instances, parameters=None):\n"
        "        return [self.k * x for x in instances]\n"
    )
    p = load_predictor(str(tmp_path), predictor="my_model:P")
    assert p.predict([1, 2]) == [2, 4]
    assert PredictorOptions.of(p).max_batch_size == 8


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nocolon", "must look like 'module:Class'"),
        ("no_such_module_xyz:P", "Cannot import module"),
        ("tests.serving.predictors:Nope", "has no attribute"),
        ("tests.serving.predictors:Person", "must define load"),
    ],
)
def test_explicit_predictor_errors(tmp_path: Path, target: str, message: str) -> None:
    with pytest.raises(PredictorLoadError, match=message):
        load_predictor(tmp_path, predictor=target)


def test_nothing_found_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(PredictorLoadError, match="ENDPOINTKIT_PREDICTOR=module:Class"):
        load_predictor(tmp_path)
    with pytest.raises(PredictorLoadError, match="does not exist"):
        load_predictor(tmp_path / "missing")


def test_missing_extra_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the extra were not installed
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07")
    with pytest.raises(MissingExtraError, match=r"pip install 'endpointkit\[onnx\]'"):
        load_predictor(tmp_path)


def test_cloud_uris_need_their_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(MissingExtraError, match=r"endpointkit\[sagemaker\]"):
        load_predictor("s3://bucket/model")
    monkeypatch.setitem(sys.modules, "google.cloud", None)
    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)
    with pytest.raises(MissingExtraError, match="google-cloud-storage"):
        load_predictor("gs://bucket/model")


def test_toolkit_script_wins_over_artifacts(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "model.joblib").write_bytes(b"not used")
    (tmp_path / "code" / "inference.py").write_text(
        "def model_fn(model_dir): return 5\n"
        "def predict_fn(data, model): return [model] * len(data)\n"
    )
    assert load_predictor(tmp_path).predict([1, 2]) == [5, 5]


def test_toolkit_rejects_transform_fn_with_predict_fn(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text(
        "def model_fn(d): return 1\n"
        "def predict_fn(x, m): return x\n"
        "def transform_fn(m, d, c, a): return d\n"
    )
    with pytest.raises(PredictorLoadError, match="cannot be combined"):
        load_predictor(tmp_path)


@pytest.fixture
def sklearn_model(tmp_path: Path) -> Path:
    pytest.importorskip("sklearn", reason="pip install 'endpointkit[sklearn]'")
    import joblib
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    d = tmp_path / "model"
    d.mkdir()
    joblib.dump(LogisticRegression().fit(x, y), d / "model.joblib")
    return d


def test_sklearn_builtin_in_process(sklearn_model: Path) -> None:
    p = load_predictor(sklearn_model)
    assert p.predict([[5, 5, 0, 0], [-5, -5, 0, 0]]).tolist() == [1, 0]
    proba = p.predict([[5, 5, 0, 0]], {"method": "predict_proba"})
    assert proba.shape == (1, 2)
    assert PredictorOptions.of(p).input_shape == (4,)


def test_sklearn_builtin_over_all_contracts(sklearn_model: Path, tmp_path: Path) -> None:
    with start_server(tmp_path, ["--model-dir", str(sklearn_model)]) as s:
        rows = [[5, 5, 0, 0], [-5, -5, 0, 0]]
        assert s.client.post("/predict", json={"instances": rows}).json() == {"predictions": [1, 0]}
        r = s.client.post(
            "/invocations", content=b"5,5,0,0\n-5,-5,0,0\n", headers={"Content-Type": "text/csv"}
        )
        assert r.json() == [1, 0]
        r = s.client.post(
            "/predict", json={"instances": rows, "parameters": {"method": "predict_proba"}}
        )
        assert len(r.json()["predictions"][0]) == 2
        tensor = {"name": "x", "shape": [2, 4], "datatype": "FP32", "data": rows}
        out = s.client.post("/v2/models/model/infer", json={"inputs": [tensor]}).json()
        assert out["outputs"][0]["data"] == [1, 0]
        r = s.client.post("/predict", json={"instances": [[1, 2, 3]]})  # 3 features, not 4
        assert r.status_code == 422
        assert "instance 0" in r.json()["error"]


def test_sklearn_builtin_batches_concurrent_requests_by_default(
    sklearn_model: Path, tmp_path: Path
) -> None:
    import joblib

    model = joblib.load(sklearn_model / "model.joblib")
    rng = np.random.default_rng(1)
    bodies = [rng.normal(size=(1 + i % 3, 4)).round(3).tolist() for i in range(64)]

    async def fire(url: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            return await asyncio.gather(
                *(client.post("/predict", json={"instances": rows}) for rows in bodies)
            )

    # the handler's own max_batch_size; a 200 ms window makes the merging certain on a busy
    # machine (with none, only requests queued while the model thread is busy are merged)
    on = {"ENDPOINTKIT_MAX_LATENCY_MS": "200"}
    off = {"ENDPOINTKIT_MAX_BATCH_SIZE": "1", "ENDPOINTKIT_MAX_LATENCY_MS": "200"}
    for batching, env in ((True, on), (False, off)):
        (tmp_path / str(batching)).mkdir()
        with start_server(tmp_path / str(batching), ["--model-dir", str(sklearn_model)], env) as s:
            responses = asyncio.run(fire(s.url))
            for rows, r in zip(bodies, responses, strict=True):
                assert r.json() == {"predictions": model.predict(np.array(rows)).tolist()}
            calls = s.metric("endpointkit_batch_size_count")
            assert (0 < calls < 64) if batching else calls == 0  # merged unless turned off


def test_multi_output_probabilities_come_one_per_row_batched_or_not(tmp_path: Path) -> None:
    """A multi-output classifier's predict_proba is a list with one array per output, each
    holding every row: split by the batcher as if it were rows, two merged callers each got
    one output's probabilities for both rows (the other caller's among them)."""
    pytest.importorskip("sklearn", reason="pip install 'endpointkit[sklearn]'")
    import joblib
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 3))
    y = np.stack([(x[:, 0] > 0), (x[:, 1] > x[:, 2])], axis=1).astype(int)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
    folder = tmp_path / "model"
    folder.mkdir()
    joblib.dump(model, folder / "model.joblib")
    rows = rng.normal(size=(16, 3)).round(3).tolist()

    def expected(row: list[float]) -> list[list[float]]:
        return [out[0].tolist() for out in model.predict_proba(np.array([row]))]

    async def fire(url: str) -> list[httpx.Response]:
        body = {"parameters": {"method": "predict_proba"}}
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return await asyncio.gather(
                *(client.post("/predict", json={"instances": [r], **body}) for r in rows)
            )

    env = {"ENDPOINTKIT_MAX_LATENCY_MS": "500"}  # the 16 callers are merged
    with start_server(tmp_path, ["--model-dir", str(folder)], env) as s:
        for row, r in zip(rows, asyncio.run(fire(s.url)), strict=True):
            assert r.json() == {"predictions": [expected(row)]}
        assert s.metric("endpointkit_batch_size_count") < len(rows)
        both = s.client.post(
            "/predict",
            json={"instances": rows[:2], "parameters": {"method": "predict_proba"}},
        )
        assert both.json() == {"predictions": [expected(rows[0]), expected(rows[1])]}


@pytest.fixture
def onnx_model(tmp_path: Path) -> Path:
    onnx = pytest.importorskip("onnx", reason="pip install onnx onnxruntime")
    pytest.importorskip("onnxruntime", reason="pip install 'endpointkit[onnx]'")
    from onnx import TensorProto, helper

    weights = helper.make_tensor("w", TensorProto.FLOAT, [4, 1], [1.0, 2.0, 3.0, 4.0])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "dot",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    d = tmp_path / "model"
    d.mkdir()
    onnx.save(model, str(d / "model.onnx"))
    return d


def test_onnx_builtin(onnx_model: Path, tmp_path: Path) -> None:
    p = load_predictor(onnx_model)
    assert p.predict([[1, 1, 1, 1]]).tolist() == [[10.0]]
    with start_server(tmp_path, ["--model-dir", str(onnx_model)]) as s:
        r = s.client.post("/predict", json={"instances": [[1, 0, 0, 0], [0, 0, 0, 1]]})
        assert r.json() == {"predictions": [[1.0], [4.0]]}
        tensor = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 0, 0]}
        out = s.client.post("/v2/models/model/infer", json={"inputs": [tensor]}).json()
        assert out["outputs"][0]["data"] == [3.0]
        assert out["outputs"][0]["shape"] == [1, 1]
        r = s.client.post("/predict", json={"instances": [[1, 2]]})  # wrong width
        assert r.status_code == 422


def test_xgboost_builtin(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost", reason="pip install 'endpointkit[xgboost]'")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 3))
    booster = xgb.train(
        {"objective": "reg:squarederror", "max_depth": 2},
        xgb.DMatrix(x, label=x[:, 0] * 2),
        num_boost_round=5,
    )
    d = tmp_path / "model"
    d.mkdir()
    booster.save_model(str(d / "model.ubj"))
    want = booster.predict(xgb.DMatrix(x[:2].astype(np.float32))).tolist()
    p = load_predictor(d)
    assert PredictorOptions.of(p).input_shape == (3,)
    np.testing.assert_allclose(p.predict(x[:2].tolist()), want, rtol=1e-6)
    with start_server(tmp_path, ["--model-dir", str(d)]) as s:
        got = s.client.post("/invocations", json=x[:2].tolist()).json()
        np.testing.assert_allclose(got, want, rtol=1e-6)
