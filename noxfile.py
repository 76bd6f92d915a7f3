"""Developer sessions: tests, lint, typecheck, quickstart, bench, container, docs.

Every session builds its own virtual environment with uv, so a fresh machine needs only
`python -m pip install nox uv` (the README's commands do that).
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
# Tests start many Python processes: compile bytecode once at install, not in every process.
os.environ.setdefault("UV_COMPILE_BYTECODE", "1")

PYTHON = os.environ.get("ENDPOINTKIT_NOX_PYTHON", "3.11")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the whole test suite (pass pytest arguments after --)."""
    session.install("-e", ".[dev]")
    args = session.posargs or ["-q"]
    session.run("pytest", *args)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session(python=PYTHON)
def quickstart(session: nox.Session) -> None:
    """The README's main job: deploy, canary, shift and invoke an endpoint, no cloud account."""
    session.install("-e", ".[serve,sklearn]")
    session.run("python", "examples/quickstart/run.py", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks with peers side by side: `nox -s bench -- serving` (see benchmarks/README.md).

    The serving benchmark makes each peer's own virtual environment with uv under
    ~/.cache/endpointkit-bench (ENDPOINTKIT_BENCH_CACHE) and profiles with py-spy.
    """
    session.install("-e", ".[dev]", "py-spy")
    session.run("python", "-m", "benchmarks", *session.posargs)


CONTAINER_IMAGE = "localhost/endpointkit-serve:sklearn"


@nox.session(python=PYTHON)
def container(session: nox.Session) -> None:
    """Build the CPU serving image with podman (offline, from a local Debian base) and run the
    platform contract tests in tests/container/ against running containers.

    Needs podman, runc and debootstrap (`.ci/run` installs them); see containers/README.md.
    `nox -s container -- -k vertex` passes pytest arguments; ENDPOINTKIT_SKIP_BUILD=1 tests the
    image already built.
    """
    # pip (for `pip download` of the wheelhouse) and the tests' own needs; the project with
    # the local backend and boto3 for test_local_image.py (versions from the image).
    session.install("pip", "packaging", "pytest>=8", "pytest-timeout>=2.3", "httpx>=0.27")
    session.install("-e", ".[serve,sagemaker]")
    if not os.environ.get("ENDPOINTKIT_SKIP_BUILD"):
        session.run("python", "containers/local.py", "all")
    # test_oip_grpc.py's clients (OIP v2 over gRPC and grpc.health.v1).
    session.install("tritonclient[grpc]>=2.40", "grpcio-health-checking>=1.60")
    session.run(
        "pytest",
        "tests/container",
        *(session.posargs or ["-q"]),
        env={"ENDPOINTKIT_CONTAINER_IMAGE": CONTAINER_IMAGE},
    )


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Execute the quickstart notebook, then build the site strictly into build/site.

    Any warning fails the build: a broken link, a docstring mkdocstrings cannot resolve, a
    notebook cell that raises. `nox -s docs -- --dirty` passes arguments to `mkdocs build`;
    `mkdocs serve` (in the session's environment) previews it.
    """
    session.install("-e", ".[docs]")
    # Material prints a banner about its successor on every build; it is not a warning.
    env = {"NO_MKDOCS_2_WARNING": "1"}
    session.run("python", "docs/scripts/notebook.py", env=env)
    session.run("mkdocs", "build", "--strict", *session.posargs, env=env)


@nox.session(python=PYTHON)
def faults(session: nox.Session) -> None:
    """Reliability under faults (issue 12): hostile generated requests, a hung predictor,
    kill -9 under load, slowloris, 1,000 connections, SIGTERM in flight. Writes
    benchmarks/results/faults.md and .json (`-- --quick` for a scaled-down smoke run)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "benchmarks", "faults", *session.posargs)
