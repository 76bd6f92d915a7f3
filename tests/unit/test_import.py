"""`import endpointkit` stays light: no cloud SDK, and the CLI's --help needs no pydantic."""

from __future__ import annotations

import json
import subprocess
import sys

import endpointkit

HEAVY = ("boto3", "botocore", "google", "s3transfer", "grpc")


def loaded_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys, json\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=60)
    return list(json.loads(result.stdout))


def test_import_endpointkit_loads_no_cloud_sdk() -> None:
    top = loaded_after("import endpointkit")
    assert not [m for m in top if m in HEAVY]
    assert "pydantic" not in top  # the public names load on first use


def test_using_the_api_still_loads_no_cloud_sdk() -> None:
    top = loaded_after(
        "import endpointkit as ek\n"
        "spec = ek.EndpointSpec.from_dict({'name': 'a', 'versions': [{'name': 'v1'}]})\n"
        "ek.Endpoint, ek.apply, ek.plan, ek.AsyncEndpoint, ek.get_backend\n"
        "from endpointkit.adapters.mock import MockBackend\n"
        "ek.apply(spec, MockBackend(predictors={'v1': lambda xs: xs}))"
    )
    assert not [m for m in top if m in HEAVY]


def test_cli_help_imports_only_argparse_machinery() -> None:
    top = loaded_after("import endpointkit.cli as c\nc.build_parser().format_help()")
    assert not [m for m in top if m in (*HEAVY, "pydantic", "rich", "yaml", "tenacity")]


def test_every_public_name_resolves() -> None:
    for name in endpointkit.__all__:
        assert getattr(endpointkit, name) is not None
    assert endpointkit.plan.__module__ == "endpointkit.planner"
