"""`endpointkit apply` of a spec with `backend: sagemaker`, end to end through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from endpointkit.cli import main
from tests.conformance.suite import Versions
from tests.fakes.sagemaker import FakeSageMaker
from tests.sagemaker.conftest import leftovers

pytestmark = pytest.mark.slow


def write_spec(
    path: Path, fake: FakeSageMaker, versions: Versions, traffic: dict[str, int]
) -> Path:
    settings = fake.settings()
    settings.pop("endpoint_url")  # given with --set below, to exercise both routes
    spec = {
        "name": "sm-cli",
        "backend": "sagemaker",
        "settings": settings,
        "versions": [
            {"name": v, "model": versions.echo(v).model, "predictor": "echo_predictor:Echo"}
            for v in traffic
        ],
        "traffic": traffic,
        "tags": {"team": "ml"},
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def test_apply_twice_is_a_no_op_and_destroy_leaves_nothing(
    fake: FakeSageMaker, versions: Versions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path / "endpoint.yaml", fake, versions, {"v1": 80, "v2": 20})
    flags = ["--set", f"endpoint_url={fake.endpoint_url}"]
    waiting = [*flags, "--timeout", "60"]  # for the commands that wait for a change
    try:
        assert main(["apply", str(spec), *waiting]) == 0
        first = capsys.readouterr().out
        assert "create endpoint sm-cli" in first
        assert "deploy v2" in first
        calls = dict(fake.calls)

        assert main(["apply", str(spec), *waiting]) == 0
        second = capsys.readouterr().out
        assert "no changes" in second
        changes = {k: v - calls.get(k, 0) for k, v in fake.calls.items() if v != calls.get(k, 0)}
        assert not {k for k in changes if not k.startswith(("Describe", "List"))}, changes
        assert main(["plan", str(spec), "--detailed-exitcode", *flags]) == 0

        assert (
            main(
                [
                    "invoke",
                    "sm-cli",
                    "--instances",
                    "[[1]]",
                    "-o",
                    "json",
                    "--target-version",
                    "v2",
                    "--spec",
                    str(spec),
                    *flags,
                ]
            )
            == 0
        )
        assert '"v2"' in capsys.readouterr().out

        shifted = write_spec(tmp_path / "endpoint.yaml", fake, versions, {"v2": 100})
        assert main(["apply", str(shifted), *waiting]) == 0
        assert "undeploy v1" in capsys.readouterr().out
    finally:
        assert main(["destroy", str(spec), *flags]) == 0
    assert leftovers(fake, "sm-cli") == {
        "endpoints": [],
        "configs": [],
        "models": [],
        "artifacts": [],
    }
