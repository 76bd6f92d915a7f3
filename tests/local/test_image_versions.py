"""Local versions from an image, where no container engine is needed: what is refused before
anything changes. (Containers themselves: tests/container/test_local_image.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from endpointkit.errors import ValidationError
from endpointkit.spec import VersionSpec
from tests.local.harness import stop_everything

ROOT = Path(__file__).resolve().parents[2]

# Deploys a version from an image with the PATH it is given, in a fresh interpreter (so the
# engine search is not remembered from this one), and prints what happened as JSON.
DEPLOY = textwrap.dedent(
    """
    import json, sys
    from endpointkit import Endpoint
    from endpointkit.adapters.local import LocalBackend
    from endpointkit.errors import EndpointKitError
    from endpointkit.spec import VersionSpec

    backend = LocalBackend(home=sys.argv[1])
    spec = VersionSpec(name="box", model=sys.argv[2], image="localhost/endpointkit-serve:cpu")
    try:
        Endpoint.create("boxed", spec, backend=backend, timeout=30)
        outcome = {"error": None}
    except EndpointKitError as exc:
        outcome = {"error": type(exc).__name__, "message": str(exc)}
    outcome["exists"] = backend.exists("boxed")
    backend.close()
    print(json.dumps(outcome))
    """
)


def deploy_with_path(tmp_path: Path, bin_dir: Path) -> dict[str, object]:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    home = tmp_path / "home"
    env = {**os.environ, "PATH": str(bin_dir)}
    done = subprocess.run(
        [sys.executable, "-c", DEPLOY, str(home), str(model)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    stop_everything(home, set())  # (old code started a gateway here)
    assert done.returncode == 0, done.stderr
    outcome: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome


def test_no_engine_on_path_is_a_clear_error_naming_both(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    outcome = deploy_with_path(tmp_path, empty)
    assert outcome["error"] == "ValidationError", outcome
    message = str(outcome["message"])
    assert "podman: not found on PATH" in message
    assert "docker: not found on PATH" in message
    assert "Install podman or docker" in message
    assert outcome["exists"] is False  # nothing was created


def test_an_engine_that_does_not_work_is_passed_over_and_said_why(tmp_path: Path) -> None:
    """A docker client whose daemon is not running (a real script answering as it does)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
        " Is the docker daemon running?' >&2\nexit 1\n"
    )
    docker.chmod(0o755)
    outcome = deploy_with_path(tmp_path, bin_dir)
    assert outcome["error"] == "ValidationError", outcome
    message = str(outcome["message"])
    assert "podman: not found on PATH" in message
    assert "`docker version` failed (Cannot connect to the Docker daemon" in message
    assert outcome["exists"] is False


@pytest.mark.parametrize(
    ("image", "model", "says"),
    [
        ("--privileged", None, "is not an image reference"),
        ("my image:1", None, "is not an image reference"),
        ("localhost/serve:cpu", "s3://bucket/model.tar.gz", "reads its model from a local folder"),
    ],
)
def test_a_version_from_an_image_is_checked_before_anything_changes(
    tmp_path: Path, image: str, model: str | None, says: str
) -> None:
    backend = LocalBackend(home=tmp_path / "home")
    try:
        spec = VersionSpec(name="box", model=model, image=image)
        with pytest.raises(ValidationError, match=says):
            Endpoint.create("boxed", spec, backend=backend, timeout=30)
        assert not backend.exists("boxed")
    finally:
        backend.close()
