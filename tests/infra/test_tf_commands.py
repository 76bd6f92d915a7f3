"""`endpointkit tf read|apply|destroy`: the protocols Terraform's external data source and
local-exec provisioners expect (strings in and out, env inputs, one-line errors)."""

from __future__ import annotations

import io
import json
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
    backend = MockBackend()
    for name in ("v1", "v2"):
        backend.register(name, answer(name))
    with override_backends(backend):
        yield backend


def read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], query: Any
) -> tuple[int, Any, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(query)))
    code = main(["tf", "read"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else out, err


def test_read_returns_a_flat_object_of_strings(
    mock: MockBackend, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mock.add_endpoint("churn", {"v1": answer("v1"), "v2": answer("v2")}, {"v1": 70, "v2": 30})
    events = len(mock.history("churn"))
    code, result, _ = read(monkeypatch, capsys, {"endpoint": "churn", "backend": "mock"})
    assert code == 0
    assert all(isinstance(v, str) for v in result.values())
    assert result["exists"] == "true"
    assert result["status"] == "InService"
    assert json.loads(result["versions"]) == ["v1", "v2"]
    assert json.loads(result["traffic"]) == {"v1": 70, "v2": 30}
    assert json.loads(result["shadow"]) is None
    assert len(mock.history("churn")) == events  # a data source never changes anything


def test_read_of_a_missing_endpoint_says_so(
    mock: MockBackend, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, _ = read(monkeypatch, capsys, {"endpoint": "nope"})
    assert code == 0
    assert result["exists"] == "false"


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"endpoint": "churn", "settings": {"region": "x"}}, "must be a string"),
        ({}, "needs 'endpoint'"),
        ({"endpoint": "churn", "settings": "{not json"}, "settings must be a JSON object"),
        (["not", "an", "object"], "stdin must be a JSON object"),
    ],
)
def test_read_errors_are_one_line_on_stderr(
    mock: MockBackend,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    query: Any,
    words: str,
) -> None:
    code, out, err = read(monkeypatch, capsys, query)
    assert code != 0
    assert out == ""
    assert words in err
    assert len(err.strip().splitlines()) == 1


def test_apply_and_destroy_take_inputs_from_the_environment(
    mock: MockBackend,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    spec = {
        "name": "churn",
        "backend": "mock",
        "versions": [{"name": "v1"}, {"name": "v2"}],
        "traffic": {"v1": 60, "v2": 40},
    }
    monkeypatch.setenv("ENDPOINTKIT_SPEC", json.dumps(spec))
    assert main(["tf", "apply"]) == 0
    assert mock.get("churn").traffic.serving() == {"v1": 60, "v2": 40}
    events = len(mock.history("churn"))
    assert main(["tf", "apply"]) == 0  # idempotent: Terraform may run it again
    assert len(mock.history("churn")) == events

    spec_file = tmp_path / "churn.json"
    spec_file.write_text(json.dumps({**spec, "traffic": {"v1": 0, "v2": 100}}))
    monkeypatch.setenv("ENDPOINTKIT_SPEC", str(spec_file))
    assert main(["tf", "apply"]) == 0
    assert mock.get("churn").traffic.serving() == {"v2": 100}

    monkeypatch.setenv("ENDPOINTKIT_ENDPOINT", "churn")
    assert main(["tf", "destroy"]) == 0
    assert not mock.exists("churn")
    assert main(["tf", "destroy"]) == 0  # destroying twice is fine
    assert "nothing to delete" in capsys.readouterr().err


def test_apply_without_a_spec_fails_in_one_line(
    mock: MockBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tf", "apply"]) == 2
    err = capsys.readouterr().err
    assert "no spec: pass --spec FILE or set ENDPOINTKIT_SPEC" in err
    assert len(err.strip().splitlines()) == 1
