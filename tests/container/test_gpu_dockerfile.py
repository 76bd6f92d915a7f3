"""Dockerfile.gpu is not built here (its CUDA base cannot be pulled on these machines): this
parses it and checks what it must hold. Runs in the ordinary test suite (no container needed)."""

from __future__ import annotations

import re
from pathlib import Path

CONTAINERS = Path(__file__).resolve().parents[2] / "containers"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last:]


def test_gpu_base_is_a_cuda_runtime_build_argument() -> None:
    steps = instructions(CONTAINERS / "Dockerfile.gpu")
    assert steps[0][0] == "ARG"
    name, _, default = steps[0][1].partition("=")
    assert name == "BASE_IMAGE"
    assert re.fullmatch(r"nvidia/cuda:[\d.]+-(cudnn-)?runtime-ubuntu[\d.]+", default), default
    assert ("FROM", "${BASE_IMAGE} AS python-base") in steps


def test_gpu_image_bakes_in_the_torch_extra() -> None:
    steps = instructions(CONTAINERS / "Dockerfile.gpu")
    extras = [rest.partition("=")[2] for word, rest in steps if rest.startswith("EXTRAS=")]
    assert extras
    assert all("torch" in e.split(",") and "serve" in e.split(",") for e in extras)
    pyproject = (CONTAINERS.parent / "pyproject.toml").read_text()
    assert re.search(r"^torch = \[.*torch", pyproject, re.M)


def test_gpu_and_cpu_images_start_the_same_way() -> None:
    cpu = final_stage(instructions(CONTAINERS / "Dockerfile"))
    gpu = final_stage(instructions(CONTAINERS / "Dockerfile.gpu"))
    for word in ("ENTRYPOINT", "CMD", "EXPOSE", "USER"):
        assert [s for s in cpu if s[0] == word] == [s for s in gpu if s[0] == word], word
    assert ("ENTRYPOINT", '["python3", "-m", "endpointkit.serving"]') in gpu
    labels = " ".join(rest for word, rest in gpu if word == "LABEL")
    assert "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true" in labels


def test_both_images_bake_in_the_grpc_extra_and_declare_its_port() -> None:
    """The port both declare for OIP v2 over gRPC (8081) works in a default build of either:
    the grpc extra is in every EXTRAS default, and its packages are pinned for the CPU image."""
    for name in ("Dockerfile", "Dockerfile.gpu"):
        steps = instructions(CONTAINERS / name)
        extras = [rest.partition("=")[2] for word, rest in steps if rest.startswith("EXTRAS=")]
        assert extras, name
        assert all("grpc" in e.split(",") for e in extras), (name, extras)
        exposed = [rest.split() for word, rest in final_stage(steps) if word == "EXPOSE"]
        assert exposed == [["8080", "8081"]], (name, exposed)
    local = (CONTAINERS / "local.py").read_text()
    assert re.search(r'^EXTRAS = "[^"]*\bgrpc\b', local, re.M)
    pins = (CONTAINERS / "constraints.txt").read_text().split()
    for package in ("grpcio", "grpcio-health-checking", "protobuf"):
        assert any(p.startswith(f"{package}==") for p in pins), package
