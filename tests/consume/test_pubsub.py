"""The consumer against Google's Pub/Sub emulator (the real service's local stand-in, driven
by google-cloud-pubsub's own client): acked only after the result is stored, redeliveries not
recomputed, the lease extended while a slow model works, bad bodies and poison messages, a
SIGTERM mid-way; results in a folder, and in Cloud Storage (the Vertex fake's GCS JSON API)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.mock import MockBackend
from endpointkit.consume import Consumer, Event, Message, open_sink, open_source
from endpointkit.consume._files import FolderSink
from endpointkit.errors import MissingDependency, NotFound, PermissionDenied, ValidationError
from tests.consume._pubsub import PubSub, Subscription, running_emulator

pytest.importorskip("google.cloud.pubsub_v1", reason="needs google-cloud-pubsub (the pubsub extra)")


@pytest.fixture(scope="module")
def pubsub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PubSub]:
    log = tmp_path_factory.mktemp("pubsub-emulator") / "emulator.log"
    with running_emulator(log) as host:
        clients = PubSub(host)
        try:
            yield clients
        finally:
            clients.close()


@pytest.fixture
def sub(pubsub: PubSub, monkeypatch: pytest.MonkeyPatch) -> Subscription:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub.host)
    return pubsub.subscription()


def rows(*values: int) -> list[bytes]:
    return [json.dumps({"instances": [[v]]}).encode() for v in values]


def consumer(
    sub: Subscription, out: Path, *, source: Any = None, **options: Any
) -> tuple[Consumer, list[Event]]:
    events: list[Event] = []
    options.setdefault("idle_exit_s", 1.0)
    options.setdefault("wait_s", 1.0)
    made = Consumer(
        source or open_source(sub.url),
        Endpoint("echo", sleep=lambda _: None),
        FolderSink(f"file://{out}"),
        on_event=events.append,
        **options,
    )
    return made, events


def source_class() -> type[Any]:
    from endpointkit.consume._gcp import PubSubSource

    return PubSubSource


def test_each_message_is_acked_only_after_its_result_is_stored(
    sub: Subscription, tmp_path: Path, mock: MockBackend
) -> None:
    ids = sub.publish(rows(1, 2, 3, 4))
    (tagged,) = sub.publish(rows(5), InferenceId="order-42", CustomAttributes="t=1")
    sink = FolderSink(f"file://{tmp_path}")

    class Checked(source_class()):  # type: ignore[misc]
        def delete(self, message: Message) -> None:
            key = message.attributes.get("InferenceId") or message.id
            assert sink.stored(key) is not None, "acked before its result was stored"
            super().delete(message)

    run, events = consumer(sub, tmp_path, source=Checked(sub.url), concurrency=3)
    report = run.run()

    assert report.stopped_by == "idle"
    assert (report.received, report.stored, report.error) == (5, 5, 0)
    assert {p.name for p in tmp_path.iterdir()} == {f"{i}.out" for i in ids} | {"order-42.out"}
    assert json.loads((tmp_path / f"{ids[2]}.out").read_bytes()) == {"predictions": [[3]]}
    assert [e.message_id for e in events if e.key == "order-42"] == [tagged]
    assert len(mock.calls_to("echo")) == 5  # every message answered exactly once
    assert [c.custom_attributes for c in mock.calls_to("echo")].count("t=1") == 1
    assert sub.left() == set()  # and every one acked


class Crash(Exception):
    """The process dying between storing a result and acking its message."""


def test_a_crash_between_store_and_ack_is_not_computed_again(
    pubsub: PubSub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mock: MockBackend
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub.host)
    sub = pubsub.subscription(dead_letter=True)  # Pub/Sub counts the delivery attempts
    (only,) = sub.publish(rows(7))

    class Dying(source_class()):  # type: ignore[misc]
        def delete(self, message: Message) -> None:
            raise Crash("killed before the ack")

        def release(self, message: Message, delay_s: float) -> None:
            pass  # a dead process nacks nothing: the ack deadline lapses

    first, _ = consumer(sub, tmp_path, source=Dying(sub.url), visibility_s=1, max_messages=1)
    first.run()
    assert {p.name for p in tmp_path.iterdir()} == {f"{only}.out"}

    restarted, events = consumer(sub, tmp_path, idle_exit_s=15.0, max_messages=1)
    report = restarted.run()

    assert [(e.outcome, e.message_id, e.receive_count) for e in events] == [("skipped", only, 2)]
    assert report.skipped == 1
    assert len(mock.calls_to("echo")) == 1  # the model saw it once
    assert sub.left() == set()


@pytest.mark.slow
def test_the_ack_deadline_is_extended_while_a_slow_model_works(
    sub: Subscription, tmp_path: Path, mock: MockBackend
) -> None:
    (only,) = sub.publish(rows(1))
    mock.inject("latency", seconds=15, times=None)
    extended: list[str] = []

    class Watched(source_class()):  # type: ignore[misc]
        def extend(self, messages: Sequence[Message], visibility_s: float) -> None:
            extended.extend(m.id for m in messages)
            super().extend(messages, visibility_s)

    # A 10 s ack deadline, a 15 s model and a free slot: without the extensions Pub/Sub
    # would hand the message out again while the model is still working on it.
    run, events = consumer(sub, tmp_path, source=Watched(sub.url), visibility_s=10, concurrency=2)
    report = run.run()

    assert len(mock.calls_to("echo")) == 1
    assert report.received == 1
    assert [e.outcome for e in events] == ["stored"]
    assert extended.count(only) >= 2
    assert sub.left() == set()


def test_a_bad_body_gets_an_error_result_and_is_acked(
    sub: Subscription, tmp_path: Path, mock: MockBackend
) -> None:
    (only,) = sub.publish([b"not json{"])

    run, events = consumer(sub, tmp_path)
    report = run.run()

    assert [e.outcome for e in events] == ["error"]
    assert report.error == 1
    error = json.loads((tmp_path / f"{only}.error").read_bytes())
    assert (error["error"], error["status"], error["message_id"]) == ("ModelError", 400, only)
    assert "Malformed JSON" in error["body"]
    assert sub.left() == set()


def test_a_poison_message_gets_an_error_on_its_last_allowed_delivery(
    sub: Subscription, tmp_path: Path, mock: MockBackend
) -> None:
    (only,) = sub.publish(rows(1))
    mock.inject("unavailable", times=None)

    run, events = consumer(sub, tmp_path, max_receives=2, idle_exit_s=15.0, max_messages=2)
    report = run.run()

    # No dead-letter policy: the deliveries this consumer saw are the count.
    assert [(e.outcome, e.receive_count) for e in events] == [("retry", 1), ("error", 2)]
    assert (report.retry, report.error) == (1, 1)
    error = json.loads((tmp_path / f"{only}.error").read_bytes())
    assert (error["error"], error["receive_count"]) == ("Unavailable", 2)
    assert sub.left() == set()


def test_an_endpoint_that_is_not_there_stops_the_consumer_with_the_message_back(
    sub: Subscription, tmp_path: Path, mock: MockBackend
) -> None:
    (only,) = sub.publish(rows(1))
    run = Consumer(
        open_source(sub.url), Endpoint("missing"), FolderSink(f"file://{tmp_path}"), wait_s=1
    )
    report = run.run()

    assert report.stopped_by == "fatal"
    assert isinstance(report.fatal, NotFound)
    # Nacked, it may come straight back to the pull running beside the stop: that delivery is
    # given back too, and counted both as received and as released.
    assert report.released == report.received >= 1
    assert list(tmp_path.iterdir()) == []
    assert sub.left() == {only}  # nacked: back at once


def test_results_in_cloud_storage(
    sub: Subscription, tmp_path: Path, mock: MockBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from endpointkit.consume._gcp import GcsSink
    from tests.fakes.vertex import VertexFake

    ids = sub.publish(rows(1, 2))
    with VertexFake(tmp_path / "gcp", buckets=("results",)) as fake:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake.url)
        sink = open_sink("gs://results/out/")
        assert isinstance(sink, GcsSink)
        events: list[Event] = []
        report = Consumer(
            open_source(sub.url),
            Endpoint("echo"),
            sink,
            wait_s=1,
            idle_exit_s=1,
            on_event=events.append,
        ).run()

        assert report.stored == 2
        assert sorted(fake.gcs_objects("results", "out")) == sorted(f"out/{i}.out" for i in ids)
        body, _ = fake.gcs_get("results", f"out/{ids[1]}.out")
        assert json.loads(body) == {"predictions": [[2]]}
        assert {e.location for e in events} == {f"gs://results/out/{i}.out" for i in ids}
        assert sink.stored(ids[0]) == f"gs://results/out/{ids[0]}.out"
        assert sink.stored("never-sent") is None
        sink.close()
    assert sub.left() == set()


def test_opening_a_subscription(pubsub: PubSub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub.host)
    with pytest.raises(NotFound, match="subscriptions list --project endpointkit-tests") as raised:
        open_source("pubsub://projects/endpointkit-tests/subscriptions/no-such-subscription")
    assert raised.value.backend is None  # a queue, not the Vertex backend
    with pytest.raises(ValidationError, match="projects/PROJECT/subscriptions/SUBSCRIPTION"):
        open_source("pubsub://my-subscription")
    source = open_source(pubsub.subscription().url)
    with pytest.raises(ValidationError, match="at most 600"):
        source.receive(1, 1, 900)
    pubsub.subscriber.delete_subscription(subscription=source.subscription)
    with pytest.raises(NotFound, match=f"Check that {source.subscription} exists"):
        source.receive(1, 1, 10)
    source.close()

    push = pubsub.subscription()
    pubsub.subscriber.modify_push_config(
        subscription=push.path, push_config={"push_endpoint": "http://127.0.0.1:9/push"}
    )
    with pytest.raises(ValidationError, match="needs a pull subscription"):
        open_source(push.url)


def test_without_google_cloud_pubsub_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The package is installed here; hiding it from the import system is the only way to
    # see what a user without the extra gets.
    import google.cloud.pubsub_v1  # noqa: F401  (so the attribute is there to hide)

    monkeypatch.setitem(sys.modules, "google.cloud.pubsub_v1", None)
    monkeypatch.delattr("google.cloud.pubsub_v1")
    with pytest.raises(MissingDependency) as raised:
        open_source("pubsub://projects/p/subscriptions/s")
    assert "google-cloud-pubsub" in str(raised.value)
    assert "[pubsub]" in (raised.value.hint or "")


def test_without_credentials_the_error_says_how_to_get_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")  # not on Google Cloud: no metadata
    with pytest.raises(PermissionDenied, match="no Google credentials") as raised:
        open_source("pubsub://projects/p/subscriptions/s")
    assert "application-default login" in (raised.value.hint or "")


@pytest.mark.slow
def test_sigterm_in_the_middle_of_a_batch_loses_no_message(
    sub: Subscription, pubsub: PubSub, tmp_path: Path
) -> None:
    sent = set(sub.publish(rows(*range(20))))
    script = Path(__file__).with_name("_consumer_process.py")
    child = subprocess.Popen(
        [
            sys.executable,
            str(script),
            "consume",
            "--queue",
            sub.url,
            "--endpoint",
            "echo",
            "--results",
            f"file://{tmp_path}",
            "--concurrency",
            "3",
            "--wait",
            "1",
            "--output",
            "json",
        ],
        env={**os.environ, "PUBSUB_EMULATOR_HOST": pubsub.host, "LATENCY_S": "0.5"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("*.out"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err.decode()

    stored = {p.name.removesuffix(".out") for p in tmp_path.glob("*.out")}
    assert 3 <= len(stored) < len(sent), "the stop did not come mid-way"
    back = sub.left()
    assert stored | back == sent  # nothing lost
    assert not stored & back  # and nothing stored was left on the subscription
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert lines[-1]["summary"]["stopped_by"] == "signal"
    assert {line["message_id"] for line in lines[:-1] if line["outcome"] == "stored"} == stored
