"""What the image holds: a non-root user, no build tools or caches, declared ports and the
SageMaker label, an exec-form entrypoint (PID 1 gets SIGTERM) with `serve` as its command."""

from __future__ import annotations

import json

import pytest

from .conftest import podman

pytestmark = pytest.mark.container


@pytest.fixture(scope="module")
def config(image: str) -> dict:
    return json.loads(podman("image", "inspect", "--format", "{{json .Config}}", image).stdout)


def sh(image: str, script: str) -> str:
    out = podman("run", "--rm", "--network", "host", "--entrypoint", "sh", image, "-c", script)
    return out.stdout


def test_declares_ports_label_entrypoint_and_user(config: dict) -> None:
    assert "8080/tcp" in config["ExposedPorts"]
    assert "8081/tcp" in config["ExposedPorts"]  # OIP v2 over gRPC (ENDPOINTKIT_GRPC_PORT=8081)
    assert config["Labels"]["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    assert config["Entrypoint"] == ["python3", "-m", "endpointkit.serving"]
    assert config["Cmd"] == ["serve"]
    user = config.get("User", "")
    assert user
    assert user.split(":")[0] not in ("0", "root")


def test_runs_as_non_root(image: str) -> None:
    assert sh(image, "id -u").strip() != "0"


def test_no_build_tools_or_caches(image: str) -> None:
    found = sh(
        image,
        "for t in gcc cc c++ make ld as pip pip3 git; do command -v $t; done;"
        "python3 -m pip --version 2>/dev/null;"
        "ls -d /root/.cache /home/*/.cache /src /wheelhouse /var/lib/apt/lists/*"
        " /var/cache/apt/archives/*.deb 2>/dev/null;"
        "find /opt/venv -name '*.dist-info' -path '*/pip-*' 2>/dev/null; true",
    )
    assert found.strip() == ""


def test_bytecode_is_precompiled(image: str) -> None:
    """Every module is compiled at build time (hash-based), so start-up never recompiles."""
    out = sh(
        image,
        "python3 -c 'import importlib.util as u, sklearn, endpointkit.serving.app as m;"
        "print(u.cache_from_source(m.__file__))'",
    ).strip()
    assert out
    assert sh(image, f"test -f {out} && echo yes").strip() == "yes"
