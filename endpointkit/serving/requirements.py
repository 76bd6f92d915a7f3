"""Install a model's ``code/requirements.txt`` before its code is imported.

The SageMaker inference toolkit pip-installs ``/opt/ml/model/code/requirements.txt`` before the
model server starts (``model_server.py`` ``_install_requirements``). Here it happens in the model
loader thread, so the port answers (``/ping`` 503, ``model_loading``) meanwhile, and:

- into a per-model prefix (``ENDPOINTKIT_PACKAGES_DIR``, default ``$TMPDIR/endpointkit-packages``,
  one folder per requirements file and content) put first on ``sys.path``, not into the image's
  environment; requirements the image already satisfies are not installed again (pip
  ``--prefix``, unlike ``--target``, checks what is installed);
- once: a file lock makes other workers wait for the first, and a marker skips pip on restarts;
- offline images: ``ENDPOINTKIT_PIP_INDEX_URL`` (``--index-url``) and
  ``ENDPOINTKIT_PIP_FIND_LINKS`` (``--find-links``; alone it also means ``--no-index``); pip's own
  ``PIP_*`` variables work too. ``ENDPOINTKIT_INSTALL_REQUIREMENTS=false`` skips the install.

A failed install is a PredictorLoadError ending with pip's last lines.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .predictor import PredictorLoadError

PIP_TAIL_LINES = 15
_OFF = ("0", "false", "no", "off")


def _site_dirs(prefix: Path) -> list[str]:
    """Where pip put packages under ``prefix`` (the layout differs by platform and distro)."""
    found = sorted(prefix.glob("lib*/python*/site-packages"))
    found += sorted(prefix.glob("local/lib*/python*/*-packages"))
    return [str(p) for p in found]


def _pip_command(requirements: Path, prefix: Path, env: Mapping[str, str]) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-input",
        "--disable-pip-version-check",
        "--prefix",
        str(prefix),
        "-r",
        str(requirements),
    ]
    index = env.get("ENDPOINTKIT_PIP_INDEX_URL")
    links = env.get("ENDPOINTKIT_PIP_FIND_LINKS")
    if index:
        cmd += ["--index-url", index]
    if links:
        cmd += ["--find-links", links]
        if not index:
            cmd.append("--no-index")
    return cmd


def install_requirements(code_dir: Path, env: Mapping[str, str]) -> list[str]:
    """Install ``code_dir/requirements.txt`` (once) and put it on ``sys.path``; return the
    folders added. Nothing happens without the file or with the opt-out."""
    requirements = code_dir / "requirements.txt"
    if not requirements.is_file():
        return []
    if (env.get("ENDPOINTKIT_INSTALL_REQUIREMENTS") or "true").strip().lower() in _OFF:
        return []
    content = requirements.read_bytes()
    key = hashlib.sha256(
        str(requirements.resolve()).encode() + b"\0" + content + sys.version.encode()
    ).hexdigest()[:16]
    root = env.get("ENDPOINTKIT_PACKAGES_DIR") or os.path.join(
        tempfile.gettempdir(), "endpointkit-packages"
    )
    prefix = Path(root) / key
    prefix.mkdir(parents=True, exist_ok=True)
    import fcntl

    with (prefix / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker installing: wait, then reuse
        done = prefix / ".installed"
        if not done.exists():
            _run_pip(requirements, prefix, env)
            done.write_text(content.decode("utf-8", "replace"))
    added = [d for d in _site_dirs(prefix) if d not in sys.path]
    sys.path[:0] = added  # first: the model's pinned versions win over the image's
    importlib.invalidate_caches()
    return added


def _run_pip(requirements: Path, prefix: Path, env: Mapping[str, str]) -> None:
    full_env = {**os.environ, **env}
    full_env["PYTHONPATH"] = os.pathsep.join(
        [*_site_dirs(prefix), *filter(None, [full_env.get("PYTHONPATH")])]
    )
    try:
        proc = subprocess.run(
            _pip_command(requirements, prefix, env),
            cwd=str(requirements.parent),  # relative paths in the file, as pip -r sees them
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            check=False,
        )
    except OSError as exc:
        raise PredictorLoadError(f"Cannot run pip to install {requirements}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-PIP_TAIL_LINES:])
        raise PredictorLoadError(
            f"Installing {requirements} failed (pip exit {proc.returncode}); set "
            f"ENDPOINTKIT_PIP_INDEX_URL / ENDPOINTKIT_PIP_FIND_LINKS for an offline image, or "
            f"ENDPOINTKIT_INSTALL_REQUIREMENTS=false to skip it. pip's last lines:\n{tail}"
        )
