"""`endpointkit invoke --async` and `endpointkit result`, in-process on the mock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from endpointkit.adapters.mock import MockBackend
from endpointkit.adapters.registry import override_backends
from endpointkit.cli import main


@pytest.fixture
def mock() -> Iterator[MockBackend]:
    backend = MockBackend(seed=3, async_polls=1)
    backend.add_endpoint("churn", {"v1": lambda xs: ["v1"] * len(xs)})
    with override_backends(backend):
        yield backend


def run(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> Any:
    assert main([*argv, "--backend", "mock", "--output", "json"]) == code
    out = capsys.readouterr().out
    return json.loads(out) if out.strip() else None


def test_invoke_async_then_result(mock: MockBackend, capsys: pytest.CaptureFixture[str]) -> None:
    queued = run(
        capsys, "invoke", "churn", "--instances", "[[1]]", "--async", "--inference-id", "job-7"
    )
    assert queued["inference_id"] == "job-7"
    assert not queued["duplicate"]
    assert queued["output_location"] == "mock://churn/async/job-7.out"
    again = run(
        capsys, "invoke", "churn", "--instances", "[[1]]", "--async", "--inference-id", "job-7"
    )
    assert again["duplicate"]
    pending = run(capsys, "result", "job-7", "--endpoint", "churn")
    assert pending["status"] == "Queued"  # the mock's first look (async_polls=1)
    done = run(capsys, "result", "job-7", "--endpoint", "churn", "--wait", "5")
    assert done["status"] == "Completed"
    assert done["body"] == {"predictions": ["v1"]}


def test_result_exit_codes(mock: MockBackend, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["result", "nope", "--endpoint", "churn", "--backend", "mock"]) == 3
    mock.inject("model_error", status=400)
    run(capsys, "invoke", "churn", "--data", "{}", "--async", "--inference-id", "bad")
    assert main(["result", "bad", "--endpoint", "churn", "--backend", "mock", "--wait", "5"]) == 7
    text = capsys.readouterr()
    assert "answered 400" in text.err


def test_async_and_stream_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["invoke", "churn", "--data", "{}", "--async", "--stream"])
    assert caught.value.code == 2
