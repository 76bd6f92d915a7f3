"""The local gateway's durable queue: boto3's InvokeEndpointAsync, bounded concurrency per
version, retries with backoff, the dead-letter state, and exactly-once completion across a
kill -9 of the gateway."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from endpointkit import Endpoint, InvocationStatus, VersionSpec
from endpointkit.adapters.local import LocalBackend
from endpointkit.adapters.local.queue import local_path
from endpointkit.errors import ModelError, SettingIgnoredWarning, Unavailable
from endpointkit.spec import AsyncInference
from tests.local.harness import alive, local_backend

pytestmark = pytest.mark.slow  # real processes and sockets

MODELS = Path(__file__).parent / "models"


def model_dir(root: Path, sleep_s: float = 0.0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(MODELS / "queue_predictor.py", root / "queue_predictor.py")
    if sleep_s:
        (root / "sleep.txt").write_text(str(sleep_s))
    return root


def logged(root: Path, name: str = "v1", **section: Any) -> VersionSpec:
    return VersionSpec(
        name=name,
        model=str(root),
        predictor="queue_predictor:Logged",
        async_inference=AsyncInference(**section) if section else None,
    )


def calls(root: Path) -> Counter[str]:
    log = root / "calls.log"
    if not log.exists():
        return Counter()
    return Counter(line.split()[0] for line in log.read_text().splitlines() if line)


def body(*instances: str) -> bytes:
    return json.dumps({"instances": list(instances)}).encode()


@pytest.fixture
def endpoint(local: LocalBackend, tmp_path: Path) -> Iterator[Callable[..., tuple[Endpoint, Path]]]:
    made: list[str] = []

    def make(sleep_s: float = 0.0, **section: Any) -> tuple[Endpoint, Path]:
        root = model_dir(tmp_path / f"model-{len(made)}", sleep_s)
        name = f"queue-{os.getpid()}-{len(made)}-{int(time.time() * 1000) % 100000}"
        made.append(name)
        return Endpoint.create(name, logged(root, **section), backend=local, timeout=60), root

    yield make
    for name in made:
        if local.exists(name):
            local.delete(name)
            local.wait_deleted(name, timeout=60)


def test_boto3_invoke_endpoint_async(
    local: LocalBackend, endpoint: Callable[..., tuple[Endpoint, Path]], tmp_path: Path
) -> None:
    boto3 = pytest.importorskip("boto3")
    ep, root = endpoint()
    client = boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        endpoint_url=local.gateway_url(),
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    # An input as a file:// URL...
    request = tmp_path / "in" / "one.json"
    request.parent.mkdir()
    request.write_bytes(body("a"))
    first = client.invoke_endpoint_async(
        EndpointName=ep.name, InputLocation=request.as_uri(), InferenceId="boto-1"
    )
    assert first["InferenceId"] == "boto-1"
    # ...or an s3:// object in the local object store.
    stored = local.home / "objects" / "inputs" / "two.json"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(body("b"))
    second = client.invoke_endpoint_async(
        EndpointName=ep.name, InputLocation="s3://inputs/two.json", InferenceId="boto-2"
    )
    for answer, expected in ((first, "done:a"), (second, "done:b")):
        job = ep.invocation(answer["InferenceId"])
        assert job.output_location == answer["OutputLocation"]
        assert job.failure_location == answer["FailureLocation"]
        assert job.result(timeout=30).json() == {"predictions": [expected]}
        assert json.loads(local_path(local.home, answer["OutputLocation"]).read_bytes()) == {
            "predictions": [expected]
        }
    # The same id again queues nothing.
    client.invoke_endpoint_async(
        EndpointName=ep.name, InputLocation=request.as_uri(), InferenceId="boto-1"
    )
    time.sleep(0.3)
    assert calls(root) == {"a": 1, "b": 1}
    with pytest.raises(client.exceptions.ClientError, match="not a file on this machine"):
        client.invoke_endpoint_async(EndpointName=ep.name, InputLocation="s3://inputs/missing")
    with pytest.raises(client.exceptions.ClientError, match="not found"):
        client.invoke_endpoint_async(EndpointName="nope", InputLocation=request.as_uri())


def test_concurrency_per_version_is_bounded(
    local: LocalBackend, endpoint: Callable[..., tuple[Endpoint, Path]], tmp_path: Path
) -> None:
    ep, _ = endpoint(
        sleep_s=0.1,
        output_path=f"file://{tmp_path}/out",
        max_concurrent_invocations_per_replica=2,
    )
    jobs = [ep.invoke_async(body(f"c{i}")) for i in range(8)]
    peak = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        counts = local.queue.counts(ep.name)
        peak = max(peak, counts["running"])
        if counts["done"] == len(jobs):
            break
        time.sleep(0.01)
    assert peak == 2
    assert all(j.status() is InvocationStatus.COMPLETED for j in jobs)
    assert jobs[0].output_location.startswith(f"file://{tmp_path}/out/")


def test_sagemaker_only_settings_warn_and_the_queue_still_answers(
    endpoint: Callable[..., tuple[Endpoint, Path]], tmp_path: Path
) -> None:
    with pytest.warns(SettingIgnoredWarning) as caught:
        ep, _ = endpoint(
            output_path=f"file://{tmp_path}/out",
            error_topic="arn:aws:sns:us-east-1:123456789012:failed",
        )
    # only ours: a ResourceWarning from an unrelated object collected meanwhile may be caught too
    (warning,) = [w for w in caught if issubclass(w.category, SettingIgnoredWarning)]
    assert "async_inference error_topic of version 'v1'" in str(warning.message)
    assert "the local backend sends no SNS notifications" in str(warning.message)
    assert ep.invoke_async(body("w1")).result(timeout=30).json() is not None


def test_retries_with_backoff_then_dead_letter(
    local: LocalBackend, endpoint: Callable[..., tuple[Endpoint, Path]]
) -> None:
    ep, root = endpoint()
    local.async_max_attempts, local.async_backoff_s = 3, 0.05
    try:
        flaky = ep.invoke_async(body("flaky-2-x"))  # fails once, then answers
        dead = ep.invoke_async(body("fail-always"))
        refused = ep.invoke_async(body("reject"))
        assert flaky.result(timeout=30).json() == {"predictions": ["done:flaky-2-x"]}
        assert flaky.outcome().attempts == 2
        with pytest.raises(ModelError) as caught:
            dead.result(timeout=30)
        assert caught.value.status == 500
        assert "after 3 deliveries" in str(caught.value)
        assert dead.outcome().attempts == 3
        assert calls(root)["fail-always"] == 3
        # The model refusing a request (4xx) dead-letters it at once.
        with pytest.raises(ModelError) as refused_error:
            refused.result(timeout=30)
        assert refused_error.value.status == 400
        assert calls(root)["reject"] == 1
        failure = local_path(local.home, str(refused.failure_location)).read_text()
        assert "rejects" in failure
        row = local.queue.get(ep.name, dead.inference_id)
        assert row is not None
        assert row.state == "dead"
        assert row.last_error is not None
        assert "500" in row.last_error
    finally:
        local.async_max_attempts = LocalBackend.async_max_attempts
        local.async_backoff_s = LocalBackend.async_backoff_s


def test_a_deleted_endpoint_dead_letters_its_queue(
    local: LocalBackend, endpoint: Callable[..., tuple[Endpoint, Path]]
) -> None:
    ep, _ = endpoint(sleep_s=0.2, max_concurrent_invocations_per_replica=1, output_path="s3://b/o")
    jobs = [ep.invoke_async(body(f"d{i}")) for i in range(5)]
    assert (
        jobs[0].output_location
        == (local.home / "objects" / "b" / "o" / f"{jobs[0].inference_id}.out").as_uri()
    )
    ep.delete()
    local.wait_deleted(ep.name, timeout=60)
    for job in jobs:  # answered before the delete, or dead-lettered by it
        try:
            job.result(timeout=30)
        except Unavailable as exc:
            assert "no longer exists" in str(exc)  # noqa: PT017
        assert job.status().done


def test_kill_9_with_1000_queued_completes_each_exactly_once(tmp_path: Path) -> None:
    """kill -9 of the gateway with ~1,000 requests queued: after a restart every request
    completes once; deliveries cut off by the kill are the only ones the model sees twice."""
    total = 1000
    root = model_dir(tmp_path / "model", sleep_s=0.004)
    with local_backend(tmp_path / "home", seed=1) as backend:
        spec = logged(
            root, output_path=f"file://{tmp_path}/out", max_concurrent_invocations_per_replica=2
        )
        ep = Endpoint.create("kill9", spec, backend=backend, timeout=60)
        ids = [f"k{i:04d}" for i in range(total)]
        stop = threading.Event()

        def enqueue() -> None:
            for inference_id in ids:
                ep.invoke_async(body(inference_id), inference_id=inference_id)
            stop.set()

        writer = threading.Thread(target=enqueue)
        writer.start()
        writer.join(timeout=120)
        assert stop.is_set()
        pid = backend.store.gateway().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        at_kill = backend.queue.counts("kill9")
        in_flight = {r.inference_id for r in backend.queue.rows("kill9") if r.state == "running"}
        assert sum(at_kill.values()) == total
        assert at_kill["queued"] >= total // 2, at_kill  # most were still queued
        backend._gateway = None
        backend.ensure_gateway()  # a new gateway: requeues what was in flight, dispatches
        deadline = time.monotonic() + 180
        while backend.queue.counts("kill9")["done"] < total and time.monotonic() < deadline:
            time.sleep(0.1)
        rows = backend.queue.rows("kill9")
        assert Counter(r.state for r in rows) == {"done": total}
        assert all(r.completions == 1 for r in rows)
        for row in rows:
            answer = json.loads(local_path(backend.home, row.output_location).read_bytes())
            assert answer == {"predictions": [f"done:{row.inference_id}"]}
        seen = calls(root)
        assert set(seen) == set(ids)  # nothing lost
        twice = {i for i, n in seen.items() if n > 1}
        assert all(n <= 2 for n in seen.values())
        assert twice <= in_flight  # only deliveries the kill cut off were repeated
        report = {
            "queued_at_kill": at_kill["queued"],
            "running_at_kill": at_kill["running"],
            "done_at_kill": at_kill["done"],
            "completed_after_restart": sum(r.state == "done" for r in rows),
            "completions_per_id": sorted({r.completions for r in rows}),
            "model_calls": sum(seen.values()),
            "ids_delivered_twice": len(twice),
        }
        (tmp_path / "kill9.json").write_text(json.dumps(report))
        print("kill -9 report:", json.dumps(report))
