"""The folder queue and folder results (file://), the result key, the refusal of local://,
and the CLI end to end on folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.mock import MockBackend
from endpointkit.cli import main
from endpointkit.consume import Consumer, Message, open_sink, open_source, result_key
from endpointkit.consume._files import FolderSource
from endpointkit.errors import ValidationError


def requests(folder: Path, count: int) -> list[str]:
    folder.mkdir(exist_ok=True)
    names = []
    for i in range(count):
        name = f"req-{i}.json"
        (folder / name).write_text(json.dumps({"instances": [[i]]}))
        names.append(name)
    (folder / ".half-written.json.tmp").write_text("{")  # never read
    return names


def test_a_folder_queue_into_a_folder_of_results(tmp_path: Path, mock: MockBackend) -> None:
    names = requests(tmp_path / "in", 3)
    consumer = Consumer(
        open_source(f"file://{tmp_path / 'in'}"),
        Endpoint("echo"),
        open_sink(f"file://{tmp_path / 'out'}"),
        wait_s=0.2,
        idle_exit_s=0.5,
    )
    report = consumer.run()

    assert (report.received, report.stored) == (3, 3)
    for i, name in enumerate(names):
        assert json.loads((tmp_path / "out" / f"{name}.out").read_bytes()) == {"predictions": [[i]]}
    left = sorted(p.name for p in (tmp_path / "in").iterdir())
    assert left == [".endpointkit", ".half-written.json.tmp"]
    assert list((tmp_path / "in" / ".endpointkit").iterdir()) == []


def test_a_held_file_is_not_delivered_twice_and_comes_back_when_released(
    tmp_path: Path,
) -> None:
    requests(tmp_path, 1)
    first, second = FolderSource(f"file://{tmp_path}"), FolderSource(f"file://{tmp_path}")
    (held,) = first.receive(10, 0, 30)
    assert second.receive(10, 0, 30) == []  # locked by the first holder
    first.release(held, 0)
    (again,) = second.receive(10, 0, 30)
    assert (again.id, again.receive_count) == (held.id, 2)
    second.release(again, 60)  # a failure's backoff: not before a minute from now
    assert first.receive(10, 0, 30) == []


def test_the_same_folder_for_queue_and_results_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="the same"):
        Consumer(
            open_source(f"file://{tmp_path}"),
            Endpoint("echo", backend="mock"),
            open_sink(f"file://{tmp_path}"),
        )


def test_the_local_backends_queue_is_not_a_source() -> None:
    with pytest.raises(ValidationError, match="gateway already dispatches"):
        open_source("local://churn")


def test_result_keys_never_name_a_folder() -> None:
    assert result_key(Message("abc-123", b"")) == "abc-123"
    assert result_key(Message("m", b"", {"InferenceId": "order-42"})) == "order-42"
    assert result_key(Message("m", b"", {"InferenceId": "../etc/passwd"})) == "..%2Fetc%2Fpasswd"


def test_the_cli_consumes_a_folder(
    tmp_path: Path, mock: MockBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    names = requests(tmp_path / "in", 2)
    mock.inject("model_error", status=400, body=b'{"error": "no"}')
    code = main(
        [
            "consume",
            "--queue",
            f"file://{tmp_path / 'in'}",
            "--endpoint",
            "echo",
            "--results",
            f"file://{tmp_path / 'out'}",
            "--concurrency",
            "1",
            "--wait",
            "0.2",
            "--idle-exit",
            "0.5",
            "-o",
            "json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [json.loads(line) for line in out.splitlines()]
    assert sorted(line["outcome"] for line in lines[:-1]) == ["error", "stored"]
    assert lines[-1]["summary"]["stopped_by"] == "idle"
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(written) == 2
    assert {w.rsplit(".", 1)[0] for w in written} == set(names)


def test_the_cli_exits_with_not_found_for_a_missing_endpoint(
    tmp_path: Path, mock: MockBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    requests(tmp_path / "in", 1)
    code = main(
        [
            "consume",
            "--queue",
            f"file://{tmp_path / 'in'}",
            "--endpoint",
            "missing",
            "--results",
            f"file://{tmp_path / 'out'}",
            "--idle-exit",
            "2",
        ]
    )
    assert code == 3
    assert "not found" in capsys.readouterr().err
    assert (tmp_path / "in" / "req-0.json").exists()  # back on the queue
