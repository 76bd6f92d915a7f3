"""The README's main job, run as a test so it cannot rot: examples/quickstart/run.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["mock", "local"])
def test_quickstart_runs_end_to_end(backend: str, tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="the quickstart needs endpointkit[sklearn]")
    workdir = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, workdir, ignore=shutil.ignore_patterns("models", "__pycache__"))
    home = tmp_path / "home"
    env = {"ENDPOINTKIT_HOME": str(home), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, str(workdir / "run.py"), "--backend", backend, "--requests", "100"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert "canary: deploy v2 with 20% of traffic" in out
        assert "20 requests after promote: {'v2': 20}" in out
        assert "versions: ['v2'], traffic: {'v2': 100}" in out
        assert "endpoint iris deleted" in out
        if backend == "local":
            assert "local gateway stopped." in out
    finally:
        if backend == "local":
            from tests.local.harness import stop_everything

            assert not stop_everything(home, set())
