"""`import endpointkit` stays light: no cloud SDK, and the CLI's --help needs no pydantic."""

from __future__ import annotations

import json
import subprocess
import sys

import endpointkit

HEAVY = ("boto3", "botocore", "s3transfer", "grpc")


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m in HEAVY or m.startswith("google")]


def _modules(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(result.stdout))


def loaded_after(code: str) -> list[str]:
    """Modules `code` loads beyond a bare interpreter: top-level names, google.* in full.

    A bare interpreter may already hold empty namespace modules that .pth hooks create (the
    google-cloud packages install one), so those are subtracted first.
    """
    new = _modules(code) - _modules("pass")
    return sorted({name.split(".")[0] for name in new} | {n for n in new if n.startswith("google")})


def test_import_endpointkit_loads_no_cloud_sdk() -> None:
    top = loaded_after("import endpointkit")
    assert not heavy(top)
    assert "pydantic" not in top  # the public names load on first use


def test_using_the_api_still_loads_no_cloud_sdk() -> None:
    top = loaded_after(
        "import endpointkit as ek\n"
        "spec = ek.EndpointSpec.from_dict({'name': 'a', 'versions': [{'name': 'v1'}]})\n"
        "ek.Endpoint, ek.apply, ek.plan, ek.AsyncEndpoint, ek.get_backend\n"
        "from endpointkit.adapters.mock import MockBackend\n"
        "ek.apply(spec, MockBackend(predictors={'v1': lambda xs: xs}))"
    )
    assert not heavy(top)


def test_cli_help_imports_only_argparse_machinery() -> None:
    top = loaded_after("import endpointkit.cli as c\nc.build_parser().format_help()")
    assert not heavy(top)
    assert not [m for m in top if m in ("pydantic", "rich", "yaml", "tenacity")]


def test_every_public_name_resolves() -> None:
    for name in endpointkit.__all__:
        assert getattr(endpointkit, name) is not None
    assert endpointkit.plan.__module__ == "endpointkit.planner"
