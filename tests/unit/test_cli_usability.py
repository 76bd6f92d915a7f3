"""The CLI's rough edges from issue 19: help, the mock, one-line errors, pipes, exit codes."""

from __future__ import annotations

import argparse
import io
import json
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from endpointkit import errors
from endpointkit.adapters.mock import MockBackend
from endpointkit.adapters.registry import override_backends
from endpointkit.cli import EXIT_CODES, build_parser, main
from endpointkit.endpoint import Endpoint
from endpointkit.state import Event

ROOT = Path(__file__).resolve().parents[2]
DUMP = "\n".join(f'{{"level":"error","event":"request","n":{i}}}' for i in range(15))


def run_cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "endpointkit.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


@pytest.fixture
def mock() -> Iterator[MockBackend]:
    backend = MockBackend(seed=3)
    backend.add_endpoint("churn", {"v1": lambda xs: ["v1"] * len(xs)}, {"v1": 100})
    with override_backends(backend):
        yield backend


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# -- 5: serve --help and local --help --------------------------------------------------------


@pytest.mark.parametrize(("command", "words"), [("serve", "--model-dir"), ("local", "stop")])
def test_passthrough_commands_answer_help(command: str, words: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert words in result.stdout
    assert "unrecognized arguments" not in result.stderr


# -- 6: the mock cannot live across CLI processes ----------------------------------------------


def test_cli_refuses_the_mock_backend_and_names_local(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["status", "churn", "--backend", "mock"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "one process" in line
    assert "--backend local" in line
    spec = tmp_path / "churn.yaml"
    spec.write_text("name: churn\nbackend: mock\nversions:\n  - name: v1\n")
    assert main(["apply", str(spec)]) == 2
    assert "--backend local" in one_line(capsys.readouterr().err)
    monkeypatch.setenv("ENDPOINTKIT_BACKEND", "mock")
    assert main(["list"]) == 2
    assert "--backend local" in one_line(capsys.readouterr().err)


def test_the_mock_still_serves_the_cli_inside_override_backends(
    mock: MockBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "churn", "--backend", "mock", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["traffic"] == {"v1": 100}


# -- 7: errors are one line, with the file and line, and where the full log is -----------------


def test_a_failure_with_a_log_dump_prints_one_line_and_the_log_path(
    mock: MockBackend, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: Endpoint, *args: Any, **kwargs: Any) -> Any:
        raise errors.DeploymentFailed(
            f"version 'v1' failed to start: the model failed to load. Last log lines:\n{DUMP}",
            log_hint="/state/logs/churn/v1.log",
            hint="The endpoint still serves its previous versions.",
        )

    monkeypatch.setattr(Endpoint, "scale", fail)
    assert main(["scale", "churn", "v1", "--min", "2"]) == 4
    line = one_line(capsys.readouterr().err)
    assert line.startswith("error: version 'v1' failed to start: the model failed to load.")
    assert "Last log lines" not in line
    assert '"event":"request"' not in line
    assert line.endswith("full log: /state/logs/churn/v1.log")


def test_status_and_history_show_one_line_per_failure(
    mock: MockBackend, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = mock.get("churn").model_copy(
        update={
            "failure_reason": f"version 'v2' failed to start: boom. Last log lines:\n{DUMP}",
            "details": {"log_hint": "/state/logs/churn/v2.log"},
        }
    )
    monkeypatch.setattr(mock, "get", lambda name: state)
    assert main(["status", "churn"]) == 0
    out = capsys.readouterr().out
    assert '"event":"request"' not in out
    assert "last failure: version 'v2' failed to start: boom." in out
    assert "full log: /state/logs/churn/v2.log" in out

    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    events = [
        Event(time=when, endpoint="churn", kind="created", version="v1", message="created"),
        Event(time=when, endpoint="churn", kind="failed", version="v2", message=f"boom:\n{DUMP}"),
    ]
    monkeypatch.setattr(mock, "history", lambda name: events)
    assert main(["history", "churn"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[1].endswith("failed     v2  boom")


def test_yaml_errors_name_the_file_and_line_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: churn\nversions:\n  - name: v1\n   model: [oops\n")
    assert main(["plan", str(bad), "--backend", "local"]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"{bad}:4:" in line
    assert "<unicode string>" not in line


# -- 8: a closed pipe is not an error ----------------------------------------------------------


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_history_into_a_closed_pipe_exits_quietly(
    mock: MockBackend, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["history", "churn", "-o", "json"]) == 141
    assert capsys.readouterr().err == ""


def test_a_real_process_writing_into_a_closed_pipe_exits_141_without_a_traceback(
    tmp_path: Path,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "endpointkit.cli", "local", "status", "--home", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # like `| head` that has already exited
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err
    assert "BrokenPipe" not in err


# -- 9: one table of exit codes, used consistently ---------------------------------------------


def test_the_exit_code_table_documents_interrupts_and_closed_pipes() -> None:
    assert re.search(r"^\s+130\s+interrupted", EXIT_CODES, re.M)
    assert re.search(r"^\s+141\s", EXIT_CODES, re.M)


def test_instances_that_are_not_a_list_are_a_usage_error(
    mock: MockBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["invoke", "churn", "--instances", '{"a": 1}']) == 2
    assert "--instances must be a JSON list" in one_line(capsys.readouterr().err)


def test_serve_on_a_busy_port_is_not_reported_as_not_found(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--model-dir",
            str(tmp_path),
        )
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"error: endpointkit serve: port {port} on 127.0.0.1 is already in use; " + (
        "pass another --port or stop the server that holds it."
    )


# -- 10: help that says what each flag does ----------------------------------------------------


def subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_invoke_help_offers_no_change_waiting_flags() -> None:
    text = subparsers()["invoke"].format_help()
    assert "--no-wait" not in text
    assert "for a change" not in text
    assert "--timeout" in text  # the answer's timeout
    assert "wait for the answer" in text


def test_every_positional_argument_has_help() -> None:
    missing = [
        f"{name} {action.dest}"
        for name, parser in subparsers().items()
        for action in parser._actions
        if not action.option_strings and not action.help
    ]
    assert missing == []


def test_not_found_is_worded_one_way(
    mock: MockBackend, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["status", "nope"]) == 3
    from_status = one_line(capsys.readouterr().err)

    def gateway_style(request: Any) -> Any:
        raise errors.NotFound(
            "endpoint 'nope' not found on the mock backend; run 'endpointkit list' to see it.",
            provider_code="endpoint_not_found",
            backend="mock",
            operation="invoke",
            endpoint="nope",
        )

    monkeypatch.setattr(mock, "_invoke", gateway_style)
    assert main(["invoke", "nope", "--instances", "[[1]]"]) == 3
    assert one_line(capsys.readouterr().err) == from_status
    assert from_status == (
        "error: endpoint 'nope' not found on mock. "
        "Run 'endpointkit list --backend mock' to see endpoints."
    )


# -- 3: the README's CLI examples run on the default local backend ----------------------------


def declaratively() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Declaratively", 1)[1].split("\n## ", 1)[0]


def test_readme_cli_examples_parse_and_fit_the_local_backend() -> None:
    section = declaratively()
    spec = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert spec is not None
    import yaml

    data = yaml.safe_load(spec.group(1))
    assert data["backend"] == "local"
    commands = [
        line.split("#")[0].strip()
        for line in re.search(r"```bash\n(.*?)```", section, re.S).group(1).splitlines()  # type: ignore[union-attr]
        if line.startswith("endpointkit ")
    ]
    assert commands
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(shlex.split(command)[1:])
        if args.command == "invoke" and args.instances:
            rows = json.loads(args.instances)
            assert all(len(row) == 4 for row in rows), command  # the iris model: 4 features
        if args.command == "scale":  # the local backend has no autoscaler
            assert (args.target_cpu, args.target_invocations) == (None, None), command
