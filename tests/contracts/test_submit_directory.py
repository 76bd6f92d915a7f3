"""SAGEMAKER_SUBMIT_DIRECTORY + SAGEMAKER_PROGRAM: the code outside the model archive.

Sources: the SageMaker Python SDK uploads ``entry_point``/``source_dir`` as
``s3://.../sourcedir.tar.gz`` and sets ``SAGEMAKER_SUBMIT_DIRECTORY`` and ``SAGEMAKER_PROGRAM``
on the model unless it repacks the code into ``model.tar.gz`` (``sagemaker/model.py``
``_upload_code`` / ``_script_mode_env_vars``); the framework containers download that archive,
or copy a local directory, before importing the program (sagemaker-containers ``_modules.py``
``download_and_install``; aws/sagemaker-scikit-learn-container ``serving.py``
``import_module(serving_env.module_name, serving_env.module_dir)``); the toolkit's
``environment.py`` takes ``SAGEMAKER_PROGRAM`` with or without ``.py``.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from .conftest import load_error, put_s3, start_server, write

SERVE = """
import os

import joblib


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(input_data, model):
    # the user's script, not the built-in: probabilities of the positive class
    return model.predict_proba(input_data)[:, 1].round(3)
"""


@pytest.fixture
def sklearn_model(tmp_path: Path) -> Path:
    pytest.importorskip("sklearn", reason="pip install 'endpointkit[sklearn]'")
    import joblib
    from sklearn.linear_model import LogisticRegression

    x = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    model = tmp_path / "model"
    model.mkdir()
    joblib.dump(LogisticRegression().fit(x, [0, 0, 1, 1]), model / "model.joblib")
    return model


def _check_script_serves(server: object) -> None:
    r = server.client.post("/invocations", json=[[3.0]])  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    (p,) = r.json()
    assert 0.5 < p < 1  # a probability: the script, not the built-in's class label 1


def test_local_submit_directory(tmp_path: Path, sklearn_model: Path) -> None:
    code = write(tmp_path / "src", {"serve.py": SERVE})
    env = {"SAGEMAKER_SUBMIT_DIRECTORY": str(code), "SAGEMAKER_PROGRAM": "serve.py"}
    with start_server(tmp_path, ["--model-dir", str(sklearn_model)], env) as server:
        _check_script_serves(server)


def test_s3_sourcedir_tar_gz(tmp_path: Path, sklearn_model: Path, s3_env: dict[str, str]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = SERVE.lstrip().encode()
        info = tarfile.TarInfo("serve.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    uri = put_s3(s3_env, "code", "job-1/source/sourcedir.tar.gz", buf.getvalue())
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {
        **s3_env,
        "SAGEMAKER_SUBMIT_DIRECTORY": uri,
        "SAGEMAKER_PROGRAM": "serve",
        "TMPDIR": str(scratch),
    }
    args = ["--model-dir", str(sklearn_model), "--workers", "2"]
    with start_server(tmp_path, args, env) as server:
        _check_script_serves(server)
        # fetched and unpacked once by the server, not once per worker
        assert len(list(scratch.glob("endpointkit-*"))) == 1
    assert list(scratch.glob("endpointkit-*")) == []  # and removed when it exits


@pytest.mark.parametrize("where", ["submit_directory", "code_dir"])
def test_missing_program_fails_loudly(tmp_path: Path, sklearn_model: Path, where: str) -> None:
    env = {"SAGEMAKER_PROGRAM": "serve.py"}
    if where == "submit_directory":
        env["SAGEMAKER_SUBMIT_DIRECTORY"] = str(write(tmp_path / "src", {"other.py": "x = 1"}))
    with start_server(tmp_path, ["--model-dir", str(sklearn_model)], env, ready=False) as s:
        error = load_error(s)  # never the built-in scikit-learn predictor
        assert "serve.py" in error
        assert "SAGEMAKER_PROGRAM" in error


def test_broken_program_fails_loudly(tmp_path: Path, sklearn_model: Path) -> None:
    code = write(tmp_path / "src", {"serve.py": "import not_installed_anywhere\n"})
    env = {"SAGEMAKER_SUBMIT_DIRECTORY": str(code), "SAGEMAKER_PROGRAM": "serve.py"}
    with start_server(tmp_path, ["--model-dir", str(sklearn_model)], env, ready=False) as s:
        assert "not_installed_anywhere" in load_error(s)
