"""``code/requirements.txt`` is installed before the model loads, as the toolkit does.

Source: aws/sagemaker-inference-toolkit ``model_server.py``: ``start_model_server`` runs
``_install_requirements()`` (``pip install -r /opt/ml/model/code/requirements.txt``) when the
file exists, before the model server starts, and a failure raises
``ValueError("failed to install required packages")``. No test reaches PyPI: the package is a
wheel written here, found through ``ENDPOINTKIT_PIP_FIND_LINKS`` (pip then runs ``--no-index``).
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from .conftest import load_error, start_server, write

SCRIPT = """
import ek_tiny_dep  # listed only in requirements.txt


def model_fn(model_dir):
    return ek_tiny_dep.FACTOR


def predict_fn(data, model):
    return [x * model for x in data]
"""


def build_wheel(folder: Path, name: str = "ek_tiny_dep", version: str = "0.1") -> Path:
    """A pure-Python wheel holding one module ``name`` with ``FACTOR = 7``."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": b"FACTOR = 7\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return wheel


def _model(tmp_path: Path, requirements: str) -> Path:
    return write(
        tmp_path / "model",
        {"code/inference.py": SCRIPT, "code/requirements.txt": requirements},
    )


def test_requirements_installed_once_offline(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    build_wheel(wheels)
    # numpy is already in the image: it must not be fetched (there is no index to fetch from)
    model = _model(tmp_path, "ek-tiny-dep==0.1\nnumpy\n")
    packages = tmp_path / "packages"
    env = {"ENDPOINTKIT_PIP_FIND_LINKS": str(wheels), "ENDPOINTKIT_PACKAGES_DIR": str(packages)}
    with start_server(tmp_path, ["--model-dir", str(model), "--workers", "2"], env) as server:
        assert server.client.post("/invocations", json=[1, 2]).json() == [7, 14]
    assert len(list(packages.glob("*/lib*/python*/site-packages/ek_tiny_dep.py"))) == 1
    # installed once: a restart reuses the per-model directory, even with the wheel gone
    for wheel in wheels.iterdir():
        wheel.unlink()
    with start_server(tmp_path, ["--model-dir", str(model)], env) as server:
        assert server.client.post("/invocations", json=[3]).json() == [21]


def test_pip_failure_is_a_load_error_with_pips_last_lines(tmp_path: Path) -> None:
    model = _model(tmp_path, "ek-not-anywhere==1.0\n")
    env = {
        "ENDPOINTKIT_PIP_FIND_LINKS": str(tmp_path),
        "ENDPOINTKIT_PACKAGES_DIR": str(tmp_path / "packages"),
    }
    with start_server(tmp_path, ["--model-dir", str(model)], env, ready=False) as server:
        error = load_error(server)
        assert "requirements.txt" in error
        assert "No matching distribution found for ek-not-anywhere" in error


def test_opt_out(tmp_path: Path) -> None:
    build_wheel(tmp_path / "wheels")
    model = _model(tmp_path, "ek-tiny-dep==0.1\n")
    env = {
        "ENDPOINTKIT_INSTALL_REQUIREMENTS": "false",
        "ENDPOINTKIT_PIP_FIND_LINKS": str(tmp_path / "wheels"),
        "ENDPOINTKIT_PACKAGES_DIR": str(tmp_path / "packages"),
    }
    with start_server(tmp_path, ["--model-dir", str(model)], env, ready=False) as server:
        assert "ek_tiny_dep" in load_error(server)
    assert not (tmp_path / "packages").exists()
