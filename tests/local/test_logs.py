"""The local backend's logs rotate by size (issue 12.10): a writer holding the file open
(O_APPEND, as every version process and the gateway do) keeps writing after a rotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from endpointkit.adapters.local._logs import limits_from_env, rotate_logs


def test_logs_over_the_cap_are_rotated_and_writers_keep_appending(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "churn").mkdir(parents=True)
    version_log = logs / "churn" / "v1.log"
    small = logs / "gateway.log"
    small.write_bytes(b"x" * 100)
    with open(version_log, "ab") as writer:  # the version process's own handle
        for generation in range(5):
            writer.write(f"{generation}".encode() * 3000)
            writer.flush()
            assert rotate_logs(logs, max_bytes=2048, backups=2) == [version_log]
        writer.write(b"after")
        writer.flush()
    assert version_log.read_bytes() == b"after"  # appended at the new end, not at offset 3000
    assert (logs / "churn" / "v1.log.1").read_bytes() == b"4" * 3000
    assert (logs / "churn" / "v1.log.2").read_bytes() == b"3" * 3000
    assert not (logs / "churn" / "v1.log.3").exists()  # at most `backups` old copies
    assert small.read_bytes() == b"x" * 100  # under the cap: untouched


def test_limits_come_from_the_environment_and_are_checked() -> None:
    assert limits_from_env(
        {"ENDPOINTKIT_LOG_MAX_BYTES": "4096", "ENDPOINTKIT_LOG_BACKUPS": "5"}
    ) == (
        4096,
        5,
    )
    with pytest.raises(ValueError, match="ENDPOINTKIT_LOG_MAX_BYTES"):
        limits_from_env({"ENDPOINTKIT_LOG_MAX_BYTES": "10"})


@pytest.mark.slow
def test_the_gateway_rotates_a_version_log_that_grows_past_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real processes: every request adds a JSON line to the version's log; with a 2 KiB cap
    the daemon's sweep rotates it while the version keeps serving and logging."""
    import time

    from endpointkit import Endpoint
    from tests.conformance.suite import Versions
    from tests.local.harness import local_backend

    monkeypatch.setenv("ENDPOINTKIT_LOG_MAX_BYTES", "2048")
    monkeypatch.setenv("ENDPOINTKIT_LOG_BACKUPS", "2")
    home = tmp_path / "home"
    with local_backend(home) as local:
        version = Versions(tmp_path / "models").echo("v1")
        chatty = version.model_copy(update={"env": {"ENDPOINTKIT_REQUEST_LOG": "all"}})
        ep = Endpoint.create("logs", chatty, backend=local)  # a log line per request
        log = home / "logs" / "logs" / "v1.log"
        deadline = time.monotonic() + 30
        while not log.with_name("v1.log.1").exists() and time.monotonic() < deadline:
            for _ in range(20):
                ep.predict([[1.0]])
            time.sleep(0.2)
        assert log.with_name("v1.log.1").exists(), "the version's log was never rotated"
        assert ep.predict([[1.0]]).predictions == ["v1"]  # still serving after a rotation
        assert log.stat().st_size < 64 * 1024
