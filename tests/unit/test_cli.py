"""The CLI: JSON output on every command, one-line errors, documented exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from endpointkit.adapters.mock import MockBackend
from endpointkit.adapters.registry import override_backends
from endpointkit.cli import main


def answer(name: str) -> Any:
    return lambda instances: [name] * len(instances)


@pytest.fixture
def mock() -> Iterator[MockBackend]:
    backend = MockBackend(seed=3)
    for name in ("v1", "v2"):
        backend.register(name, answer(name))
    with override_backends(backend):
        yield backend


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "churn.yaml"
    path.write_text(
        "name: churn\nbackend: mock\n"
        "versions:\n  - name: v1\n  - name: v2\n    env: {MODEL: two}\n"
        "traffic: {v1: 80, v2: 20}\n"
    )
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main([*argv, "--output", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_apply_plan_status_traffic_invoke_history_destroy_as_json(
    mock: MockBackend, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    planned = run_json(capsys, "plan", str(spec_file))
    assert [a["action"] for a in planned["actions"]] == ["create", "deploy", "traffic"]
    applied = run_json(capsys, "apply", str(spec_file))
    assert applied["state"]["traffic"] == {"v1": 80, "v2": 20}
    assert run_json(capsys, "plan", str(spec_file))["changes"] == 0

    status = run_json(capsys, "status", "churn")
    assert status["status"] == "InService"
    assert [v["name"] for v in status["versions"]] == ["v1", "v2"]
    assert status["versions"][1]["traffic"] == 20

    shifted = run_json(capsys, "traffic", "churn", "v1=50", "v2=50")
    assert shifted["traffic"] == {"v1": 50, "v2": 50}
    answer = run_json(
        capsys, "invoke", "churn", "--instances", "[[1, 2]]", "--target-version", "v2"
    )
    assert answer == {
        "version": "v2",
        "content_type": "application/json",
        "body": {"predictions": ["v2"]},
        "custom_attributes": None,
    }
    assert run_json(capsys, "promote", "churn", "v2")["traffic"] == {"v1": 0, "v2": 100}
    assert run_json(capsys, "rollback", "churn")["traffic"] == {"v1": 50, "v2": 50}
    listed = run_json(capsys, "list")
    assert [e["name"] for e in listed] == ["churn"]
    history = run_json(capsys, "history", "churn")
    assert [e["kind"] for e in history][:2] == ["created", "deployed"]
    destroyed = run_json(capsys, "destroy", str(spec_file))
    assert destroyed["actions"][0]["action"] == "delete"
    assert not mock.exists("churn")


def test_deploy_and_undeploy_from_flags(
    mock: MockBackend, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(capsys, "apply", str(spec_file))
    mock.register("v3", lambda xs: ["v3"] * len(xs))
    deployed = run_json(
        capsys,
        "deploy",
        "churn",
        "v3",
        "--predictor",
        "pkg.mod:Model",
        "--env",
        "A=1",
        "--traffic",
        "10",
    )
    assert deployed["traffic"]["v3"] == 10
    version = next(v for v in deployed["versions"] if v["name"] == "v3")
    assert version["spec_hash"]
    undeployed = run_json(capsys, "undeploy", "churn", "v3")
    assert "v3" not in undeployed["traffic"]
    from_spec = run_json(capsys, "deploy", "churn", "v2", "--from-spec", str(spec_file))
    assert from_spec["traffic"]["v2"] == 0 or from_spec["traffic"]["v2"] > 0


def test_text_output_renders_a_table(
    mock: MockBackend, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", str(spec_file)]) == 0
    out = capsys.readouterr().out
    assert "+ create endpoint churn with v1" in out
    assert main(["status", "churn"]) == 0
    out = capsys.readouterr().out
    assert "churn on mock: InService" in out
    assert "80%" in out


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (["status", "nope"], 3, "endpoint 'nope' not found on mock"),
        (["traffic", "churn", "v1=90", "v2=20"], 2, "sums to 110"),
        (["traffic", "churn", "v1=ninety"], 2, "must be an integer percent"),
        (["traffic", "churn", "v1"], 2, "must look like KEY=VALUE"),
        (["deploy", "churn", "v3"], 2, "deploy needs --from-spec"),
        (["deploy", "churn", "V3", "--model", "s3://b/m"], 2, "version name 'V3' is not allowed"),
        (["undeploy", "churn", "v1"], 2, "serves all traffic"),
        (["invoke", "churn", "--instances", "[1,"], 2, "not valid JSON"),
        (["invoke", "churn"], 2, "needs --instances, --data or --file"),
    ],
)
def test_errors_are_one_line_with_documented_exit_codes(
    mock: MockBackend,
    spec_file: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    words: str,
) -> None:
    mock.add_endpoint("churn", {"v1": lambda xs: xs, "v2": lambda xs: xs}, {"v1": 100})
    capsys.readouterr()
    assert main(argv) == code
    err = capsys.readouterr().err
    assert words in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_json_errors_are_machine_readable(
    mock: MockBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "nope", "--output", "json"]) == 3
    error = json.loads(capsys.readouterr().err)
    assert error["error"] == "NotFound"
    assert error["endpoint"] == "nope"
    assert error["backend"] == "mock"


def test_invalid_spec_file_fails_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: churn\nversions:\n  - name: v1\n  - name: v2\ntraffic: {v1: 90}\n")
    assert main(["apply", str(bad), "--backend", "mock"]) == 2
    err = capsys.readouterr().err
    assert f"{bad} is invalid: traffic:" in err
    assert "sums to 90" in err


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "endpointkit.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_documents_exit_codes() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "exit codes:" in result.stdout
    for command in (
        "plan",
        "apply",
        "destroy",
        "status",
        "list",
        "deploy",
        "traffic",
        "undeploy",
        "invoke",
        "history",
    ):
        assert command in result.stdout


def test_real_process_errors_and_debug(tmp_path: Path) -> None:
    unknown = run_cli("list", "--backend", "nosuch")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        "error: no backend named 'nosuch'. Available: local, mock, sagemaker, vertex."
    )
    missing = run_cli("status", "nope", "--set", f"home={tmp_path}", "--debug")
    assert missing.returncode == 3
    assert "Traceback" in missing.stderr  # --debug shows it
    usage = run_cli("traffic")
    assert usage.returncode == 2
    assert "usage:" in usage.stderr


def test_rollout_command(
    mock: MockBackend, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mock.add_endpoint("churn", {"v1": answer("v1")})
    mock.register("v2", answer("v2"))
    result = run_json(
        capsys,
        "rollout",
        "churn",
        "v2",
        "--predictor",
        "pkg.mod:Model",
        "--linear",
        "50",
        "--bake",
        "0",
        "--probe",
        "[[1.0]]",
        "--max-error-rate",
        "0",
    )
    assert result["steps"] == [50, 100]
    assert result["probe_errors"] == 0
    assert result["state"]["traffic"] == {"v1": 0, "v2": 100}
    mock.register("v3", answer("v3"))
    mock.inject("model_error", version="v3", times=None)
    assert (
        main(
            [
                "rollout",
                "churn",
                "v3",
                "--predictor",
                "pkg.mod:Model",
                "--canary",
                "20",
                "--bake",
                "0",
                "--probe",
                "[[1.0]]",
                "--max-error-rate",
                "0.5",
            ]
        )
        == 4
    )
    assert "was rolled back at 20%" in capsys.readouterr().err
    assert mock.get("churn").version_names == ["v1", "v2"]
    mock.set_alarm("churn-5xx", firing=True)
    argv = ["rollout", "churn", "v3", "--predictor", "pkg.mod:Model", "--alarm", "churn-5xx"]
    assert main(argv) == 1
    assert "alarm churn-5xx is already in ALARM" in capsys.readouterr().err
    assert mock.get("churn").version_names == ["v1", "v2"]
    mock.set_alarm("churn-5xx", firing=False)
    assert main([*argv, "--native"]) == 1  # the platform's own rollout: not on the mock
    assert "does not support native rollout" in capsys.readouterr().err
    assert mock.get("churn").version_names == ["v1", "v2"]


def test_scale_changes_replicas_and_autoscaling_in_place(
    mock: MockBackend, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(capsys, "apply", str(spec_file))
    scaled = run_json(
        capsys, "scale", "churn", "v2", "--min", "2", "--max", "5", "--target-cpu", "60"
    )
    v2 = next(v for v in scaled["versions"] if v["name"] == "v2")
    assert v2["scaling"] == {
        "min_replicas": 2,
        "max_replicas": 5,
        "autoscaling": {
            "target_invocations_per_replica": None,
            "target_cpu_utilization": 60,
            "scale_in_cooldown_s": 300,
            "scale_out_cooldown_s": 60,
        },
    }
    assert scaled["traffic"] == {"v1": 80, "v2": 20}
    # What is not given is kept; --no-autoscaling turns it off.
    kept = run_json(capsys, "scale", "churn", "v2", "--min", "3")
    assert next(v for v in kept["versions"] if v["name"] == "v2")["scaling"]["max_replicas"] == 5
    off = run_json(capsys, "scale", "churn", "v2", "--no-autoscaling")
    assert next(v for v in off["versions"] if v["name"] == "v2")["scaling"]["autoscaling"] is None
    # The spec still says one replica: plan offers to scale back, in place.
    planned = run_json(capsys, "plan", str(spec_file))
    assert [a["action"] for a in planned["actions"]] == ["scale"]
    assert planned["actions"][0]["scaling"]["min_replicas"] == 1


def test_scale_errors_are_one_line_with_exit_codes(
    mock: MockBackend, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(capsys, "apply", str(spec_file))
    capsys.readouterr()
    assert main(["scale", "churn", "v2"]) == 2
    assert "scale needs at least one of --min" in capsys.readouterr().err
    assert main(["scale", "churn", "v2", "--min", "4", "--max", "2"]) == 2
    assert "max_replicas (2) is below min_replicas (4)" in capsys.readouterr().err
    assert main(["scale", "churn", "v9", "--min", "2"]) == 3
    assert "version 'v9' is not deployed" in capsys.readouterr().err


class ShowsOldStateWhileUpdating(MockBackend):
    """Reports a snapshot as Updating for a few reads, as SageMaker's DescribeEndpoint shows
    the old variants until an update completes."""

    stale: list[Any]

    def get(self, name: str) -> Any:
        if self.stale:
            return self.stale.pop()
        return super().get(name)


def test_apply_prints_the_plan_it_runs_after_waiting_out_a_running_change(
    spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """apply once printed its first plan while it ran a second one, made after waiting out a
    change still running (issue 12.19)."""
    from endpointkit.spec import load_spec
    from endpointkit.state import Status

    backend = ShowsOldStateWhileUpdating()
    backend.stale = []
    for name in ("v1", "v2"):
        backend.register(name, answer(name))
    spec = load_spec(spec_file)
    backend.create("churn", spec.version("v1"))
    backend.deploy("churn", spec.version("v2"), 0)
    old = backend.get("churn").model_copy(update={"status": Status.UPDATING})
    backend.set_traffic("churn", {"v1": 80, "v2": 20})  # the change still "running"
    backend.stale = [old, old]
    with override_backends(backend):
        assert main(["apply", str(spec_file)]) == 0
    out = capsys.readouterr().out
    assert "no changes" in out  # what ran: the running change got there
    assert "traffic" not in out  # the plan made against the old state is not shown


def test_deploy_a_framework_version_from_flags(
    mock: MockBackend, spec_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(capsys, "apply", str(spec_file))
    mock.register("v3", lambda xs: ["v3"] * len(xs))
    argv = ["deploy", "churn", "v3", "--model", str(tmp_path), "--framework", "sklearn"]
    assert main([*argv, "--framework-version", "1.2-1", "--traffic", "0"]) == 0
    spec = mock.get("churn").version("v3").spec  # type: ignore[union-attr]
    assert (spec.framework, spec.framework_version) == ("sklearn", "1.2-1")  # type: ignore[union-attr]
    capsys.readouterr()
    assert main(["deploy", "churn", "v4", "--model", str(tmp_path), "--framework", "sklearn"]) != 0
    assert "framework_version" in capsys.readouterr().err
