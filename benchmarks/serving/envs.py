"""Virtual environments for the peers, made by the benchmark itself with uv, outside the repo.

Each peer gets its own environment under ``$ENDPOINTKIT_BENCH_CACHE`` (default
``~/.cache/endpointkit-bench/<peer>``), installed from PyPI with ``uv venv`` + ``uv pip install``
and the same scikit-learn as the benchmark's own interpreter (so every peer unpickles the same
model). A finished install leaves a marker holding its requirement list; an environment whose
marker matches is reused. An install that fails or runs past its time limit is reported, and
the peer is skipped with that reason.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(
    os.environ.get("ENDPOINTKIT_BENCH_CACHE", Path.home() / ".cache" / "endpointkit-bench")
)
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _sklearn() -> list[str]:
    import joblib
    import sklearn

    return [f"scikit-learn=={sklearn.__version__}", f"joblib=={joblib.__version__}"]


# peer -> requirements (besides the shared scikit-learn pin)
REQUIREMENTS: dict[str, list[str]] = {
    "cpr": ["google-cloud-aiplatform[prediction]"],
    "kserve": ["kserve"],
    "bentoml": ["bentoml"],
    "mms": ["sagemaker-inference", "multi-model-server", "psutil"],
}


@dataclass
class Env:
    """One peer's environment, or why there is none."""

    peer: str
    path: Path
    ok: bool
    reason: str = ""

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    def bin(self, name: str) -> str:
        return str(self.path / "bin" / name)


def requirements(peer: str) -> list[str]:
    return [*REQUIREMENTS[peer], *_sklearn()]


def ensure(peer: str, timeout_s: float = 600.0, install: bool = True) -> Env:
    """The peer's environment, created and installed if missing (bounded by ``timeout_s``)."""
    reqs = requirements(peer)
    path = CACHE / peer
    marker = path / ".endpointkit-bench"
    digest = hashlib.sha256("\n".join(reqs).encode()).hexdigest()
    if marker.exists() and marker.read_text().strip() == digest:
        return Env(peer, path, True)
    if not install:
        return Env(peer, path, False, "not installed (run without --no-install)")
    uv = shutil.which("uv")
    if uv is None:
        return Env(peer, path, False, "uv not found on PATH")
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    log = CACHE / f"{peer}.install.log"
    print(f"  installing {peer} into {path} ({' '.join(reqs)}; log {log})", flush=True)
    try:
        with log.open("w") as out:
            subprocess.run(
                [uv, "venv", "-q", "--python", PYTHON, str(path)],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=120,
            )
            subprocess.run(
                [uv, "pip", "install", "--python", str(path / "bin" / "python"), *reqs],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
            )
    except subprocess.TimeoutExpired:
        return Env(peer, path, False, f"install did not finish in {timeout_s:.0f} s")
    except subprocess.CalledProcessError:
        tail = log.read_text().strip().splitlines()[-3:]
        return Env(peer, path, False, "install failed: " + " / ".join(tail)[:300])
    marker.write_text(digest + "\n")
    return Env(peer, path, True)


if __name__ == "__main__":  # `python -m benchmarks.serving.envs PEER...`: install only
    for name in sys.argv[1:]:
        env = ensure(name)
        print(name, "ok" if env.ok else f"skipped: {env.reason}")
