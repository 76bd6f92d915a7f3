"""The consumer against moto's SQS and S3: results first, then the delete; redeliveries not
recomputed; visibility kept while a slow model works; failures, poison messages; SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.mock import MockBackend
from endpointkit.consume import Consumer, Event, Message, open_sink, open_source
from endpointkit.consume._aws import S3Sink, SqsSource
from endpointkit.errors import NotFound
from tests.consume.conftest import Aws


def send(sqs: Any, url: str, rows: Sequence[Any], **attributes: str) -> list[str]:
    ids = []
    for row in rows:
        extra = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
        answer = sqs.send_message(
            QueueUrl=url, MessageBody=json.dumps({"instances": [row]}), MessageAttributes=extra
        )
        ids.append(answer["MessageId"])
    return ids


def counts(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages on the queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def results(s3: Any, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def consumer(
    sqs: Any, s3: Any, url: str, bucket: str, *, source: Any = None, **options: Any
) -> tuple[Consumer, list[Event]]:
    events: list[Event] = []
    options.setdefault("idle_exit_s", 1.0)
    options.setdefault("wait_s", 1.0)
    made = Consumer(
        source or SqsSource(url, client=sqs),
        Endpoint("echo", sleep=lambda _: None),
        S3Sink(f"s3://{bucket}/out", client=s3),
        on_event=events.append,
        **options,
    )
    return made, events


def test_each_message_is_deleted_only_after_its_result_is_stored(
    sqs: Any, s3: Any, queue: tuple[str, str], bucket: str, mock: MockBackend
) -> None:
    _, url = queue
    ids = send(sqs, url, [[1], [2], [3], [4]])
    (tagged,) = send(
        sqs, url, [[5]], InferenceId="order-42", Accept="application/json", CustomAttributes="t=1"
    )
    sink = S3Sink(f"s3://{bucket}/out", client=s3)

    class Checked(SqsSource):
        def delete(self, message: Message) -> None:
            key = message.attributes.get("InferenceId") or message.id
            assert sink.stored(key) is not None, "deleted before its result was stored"
            super().delete(message)

    run, events = consumer(sqs, s3, url, bucket, source=Checked(url, client=sqs), concurrency=3)
    report = run.run()

    assert report.stopped_by == "idle"
    assert (report.received, report.stored, report.error) == (5, 5, 0)
    stored = results(s3, bucket)
    assert set(stored) == {f"out/{i}.out" for i in ids} | {"out/order-42.out"}
    assert json.loads(stored[f"out/{ids[2]}.out"]) == {"predictions": [[3]]}
    head = s3.head_object(Bucket=bucket, Key="out/order-42.out")
    assert head["ContentType"] == "application/json"
    assert head["Metadata"]["endpointkit-version"] == "v1"
    assert head["Metadata"]["endpointkit-message-id"] == tagged
    assert counts(sqs, url) == (0, 0)
    assert len(mock.calls_to("echo")) == 5
    assert {e.outcome for e in events} == {"stored"}
    assert [c.custom_attributes for c in mock.calls_to("echo")].count("t=1") == 1


class Crash(Exception):
    """The process dying between storing a result and deleting its message."""


def test_a_crash_between_store_and_delete_is_not_computed_again(
    sqs: Any, s3: Any, queue: tuple[str, str], bucket: str, mock: MockBackend
) -> None:
    _, url = queue
    (only,) = send(sqs, url, [[7]])

    class Dying(SqsSource):
        def delete(self, message: Message) -> None:
            raise Crash("killed before the delete")

        def release(self, message: Message, delay_s: float) -> None:
            pass  # a dead process gives nothing back: the visibility timeout lapses

    first, _ = consumer(
        sqs, s3, url, bucket, source=Dying(url, client=sqs), visibility_s=1, max_messages=1
    )
    first.run()
    assert set(results(s3, bucket)) == {f"out/{only}.out"}
    assert counts(sqs, url) == (0, 1)  # still on the queue, hidden until its visibility lapses

    restarted, events = consumer(sqs, s3, url, bucket, idle_exit_s=10.0, max_messages=1)
    report = restarted.run()

    assert [(e.outcome, e.message_id, e.receive_count) for e in events] == [("skipped", only, 2)]
    assert report.skipped == 1
    assert len(mock.calls_to("echo")) == 1  # the model saw it once
    assert counts(sqs, url) == (0, 0)


def test_visibility_is_extended_while_a_slow_model_works(
    sqs: Any, s3: Any, queue: tuple[str, str], bucket: str, mock: MockBackend
) -> None:
    _, url = queue
    (only,) = send(sqs, url, [[1]])
    mock.inject("latency", seconds=3.5, times=None)
    extended: list[str] = []

    class Watched(SqsSource):
        def extend(self, messages: Sequence[Message], visibility_s: float) -> None:
            extended.extend(m.id for m in messages)
            super().extend(messages, visibility_s)

    # Two free slots and a 1 s visibility: without the heartbeat the same consumer would
    # receive the message again while the model is still working on it.
    run, events = consumer(
        sqs, s3, url, bucket, source=Watched(url, client=sqs), visibility_s=1, concurrency=2
    )
    report = run.run()

    assert len(mock.calls_to("echo")) == 1
    assert report.received == 1
    assert [e.outcome for e in events] == ["stored"]
    assert extended.count(only) >= 4
    assert counts(sqs, url) == (0, 0)


def test_a_refused_request_gets_an_error_result_and_is_deleted(
    sqs: Any, s3: Any, queue: tuple[str, str], bucket: str, mock: MockBackend
) -> None:
    _, url = queue
    (only,) = send(sqs, url, [[1]])
    mock.inject("model_error", status=422, body=b'{"error": "bad row"}')

    run, _ = consumer(sqs, s3, url, bucket)
    report = run.run()

    assert report.error == 1
    error = json.loads(results(s3, bucket)[f"out/{only}.error"])
    assert error["error"] == "ModelError"
    assert error["status"] == 422
    assert "bad row" in error["body"]
    assert error["message_id"] == only
    assert counts(sqs, url) == (0, 0)


def test_a_poison_message_gets_an_error_on_its_last_allowed_delivery(
    sqs: Any, s3: Any, queue: tuple[str, str], bucket: str, mock: MockBackend
) -> None:
    _, url = queue
    (only,) = send(sqs, url, [[1]])
    mock.inject("unavailable", times=None)

    run, events = consumer(sqs, s3, url, bucket, max_receives=2, idle_exit_s=10.0, max_messages=2)
    report = run.run()

    assert [(e.outcome, e.receive_count) for e in events] == [("retry", 1), ("error", 2)]
    assert (report.retry, report.error) == (1, 1)
    error = json.loads(results(s3, bucket)[f"out/{only}.error"])
    assert (error["error"], error["receive_count"]) == ("Unavailable", 2)
    assert counts(sqs, url) == (0, 0)


def test_without_max_receives_a_failing_message_is_left_to_the_queue(
    sqs: Any, s3: Any, queue: tuple[str, str], bucket: str, mock: MockBackend
) -> None:
    _, url = queue
    send(sqs, url, [[1]])
    mock.inject("unavailable", times=None)

    run, events = consumer(
        sqs, s3, url, bucket, max_receives=None, max_messages=3, idle_exit_s=10.0
    )
    report = run.run()

    assert [e.outcome for e in events] == ["retry"] * 3
    assert report.error == 0
    assert results(s3, bucket) == {}
    assert sum(counts(sqs, url)) == 1  # still there, for the queue's redrive policy


def test_an_endpoint_that_is_not_there_stops_the_consumer_with_the_message_back(
    sqs: Any, s3: Any, queue: tuple[str, str], bucket: str, mock: MockBackend
) -> None:
    _, url = queue
    send(sqs, url, [[1]])
    run = Consumer(
        SqsSource(url, client=sqs),
        Endpoint("missing"),
        S3Sink(f"s3://{bucket}/out", client=s3),
        wait_s=1,
        idle_exit_s=5,
    )
    report = run.run()

    assert report.stopped_by == "fatal"
    assert isinstance(report.fatal, NotFound)
    assert report.released == 1
    assert counts(sqs, url) == (1, 0)
    assert results(s3, bucket) == {}


def test_open_source_and_sink_by_url(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in aws.env.items():
        monkeypatch.setenv(key, value)
    aws.client("sqs").create_queue(QueueName="by-name")
    source = open_source("sqs://by-name")
    assert isinstance(source, SqsSource)
    assert source.url.endswith("/by-name")
    sink = open_sink("s3://bucket/some/prefix/")
    assert isinstance(sink, S3Sink)
    assert (sink.bucket, sink.prefix) == ("bucket", "some/prefix")
    with pytest.raises(NotFound):
        open_source("sqs://no-such-queue")


@pytest.mark.slow
def test_sigterm_in_the_middle_of_a_batch_loses_no_message(
    aws: Aws, sqs: Any, s3: Any, queue: tuple[str, str], bucket: str
) -> None:
    name, url = queue
    sent = set(send(sqs, url, [[i] for i in range(20)]))
    script = Path(__file__).with_name("_consumer_process.py")
    child = subprocess.Popen(
        [
            sys.executable,
            str(script),
            "consume",
            "--queue",
            f"sqs://{name}",
            "--endpoint",
            "echo",
            "--results",
            f"s3://{bucket}/out",
            "--concurrency",
            "3",
            "--wait",
            "1",
            "--output",
            "json",
        ],
        env={**os.environ, **aws.env, "LATENCY_S": "0.5"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(results(s3, bucket)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err.decode()

    stored = {key.removeprefix("out/").removesuffix(".out") for key in results(s3, bucket)}
    assert 3 <= len(stored) < len(sent), "the stop did not come mid-way"
    back: set[str] = set()
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        back |= {m["MessageId"] for m in got}
    assert stored | back == sent  # nothing lost
    assert not stored & back  # and nothing stored was left on the queue
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert lines[-1]["summary"]["stopped_by"] == "signal"
    assert {line["message_id"] for line in lines[:-1] if line["outcome"] == "stored"} == stored
