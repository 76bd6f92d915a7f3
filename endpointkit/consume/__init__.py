"""Queue consumers: read requests from a queue, invoke an endpoint, store each answer.

```python
from endpointkit import Endpoint
from endpointkit.consume import Consumer, open_sink, open_source

consumer = Consumer(open_source("sqs://orders"), Endpoint("churn"), open_sink("s3://out/churn"))
report = consumer.run()            # until consumer.stop(), max_messages or idle_exit_s
```

(`endpointkit consume --queue sqs://orders --endpoint churn --results s3://out/churn` is the
same from the command line, and stops cleanly on SIGTERM or Ctrl-C.)

**Messages.** A message's body is the request body, sent as it is. Message attributes (String)
may set `ContentType` (default: the consumer's, application/json), `Accept`, `InferenceId`,
`CustomAttributes` and `TargetVersion`; others are ignored.

**Results.** The answer to a message goes to `<results>/<key>.out`, a failure to
`<results>/<key>.error` (JSON: the error's type, message, the model's status and body, the
message id, its receive count). The key is the message's `InferenceId` attribute when given,
else its message id (percent-encoded where it is not a plain file name).

**Guarantees.** Delivery is at least once; results are idempotent. A message is deleted only
after its `.out` or `.error` object is stored. A message whose result is already stored (the
consumer died between storing and deleting) is deleted without invoking the endpoint again.
While an invoke runs, the message's visibility is extended every quarter of the visibility
timeout, so a slow model never gets its message handed to a second consumer. On stop
(SIGTERM), nothing more is received, messages in flight are finished (for up to the drain
time), and any still running then are made visible again at once: no message is lost, and at
worst one is computed twice (its key is the same both times).

**Failures.** The model refusing a request (4xx) or an invalid request: `.error` at once, and
the message is deleted. A transient failure (throttling after `Endpoint.invoke`'s own retries,
5xx, timeouts): the message goes back to the queue with a backoff, until its delivery number
`max_receives` (default 5), which gets an `.error` and is deleted. With `max_receives=None`
the queue's own redrive policy (a dead-letter queue) decides, and a queue without one
redelivers forever. Errors that would fail every message (endpoint not found, access denied)
stop the consumer with the message back on the queue.

**Sources and sinks.** `sqs://NAME` (or the queue's https URL) and `s3://bucket/prefix` through
boto3 (`endpointkit[sagemaker]`); `pubsub://projects/P/subscriptions/S` (a pull subscription:
the ack deadline plays the visibility timeout, a message is acked once stored and nacked on
stop) and `gs://bucket/prefix` through Google's clients (`endpointkit[pubsub]`, see `_gcp.py`);
`file://DIR` for both, a folder queue for offline use (see `_files.py`). On Pub/Sub the message
attributes above are the message's attributes, and the receive count is its delivery attempt
when the subscription has a dead-letter policy (else the deliveries this process has seen).
The local backend's own queue (`invoke --async` on `--backend local`) is not a source: its
gateway already dispatches every request in it, and a second reader would race it.
"""

from __future__ import annotations

from typing import Any

from endpointkit.consume._core import (
    Consumer,
    Event,
    Message,
    Report,
    Sink,
    Source,
    result_key,
)
from endpointkit.errors import ValidationError

__all__ = [
    "Consumer",
    "Event",
    "Message",
    "Report",
    "Sink",
    "Source",
    "open_sink",
    "open_source",
    "result_key",
]


def open_source(location: str, **options: Any) -> Source:
    """The queue at `location`: `sqs://NAME`, an SQS https URL,
    `pubsub://projects/P/subscriptions/S`, or `file://DIR`. `options` go to the source
    (`region`, `client` for SQS; `client` for Pub/Sub)."""
    if location.startswith("sqs://") or (
        location.startswith(("https://", "http://")) and "sqs" in location
    ):
        from endpointkit.consume._aws import SqsSource

        return SqsSource(location, **options)
    if location.startswith("pubsub://"):
        from endpointkit.consume._gcp import PubSubSource

        return PubSubSource(location, **options)
    if location.startswith("file://"):
        from endpointkit.consume._files import FolderSource

        return FolderSource(location)
    if location.startswith("local://"):
        raise ValidationError(
            f"{location!r}: the local backend's queue is not a consumer source: its gateway "
            "already dispatches every request queued there.",
            hint="Queue with 'endpointkit invoke --async' and read answers with "
            "'endpointkit result', or consume a folder of request files with --queue file://DIR.",
        )
    raise ValidationError(
        f"unknown queue {location!r}.",
        hint="Use sqs://NAME, an SQS queue URL, pubsub://projects/P/subscriptions/S, or "
        "file://DIR.",
    )


def open_sink(location: str, **options: Any) -> Sink:
    """Where results go: `s3://bucket/prefix`, `gs://bucket/prefix` or `file://DIR`. `options`
    go to the sink (`region`, `client` for S3; `client`, `project` for Cloud Storage)."""
    if location.startswith("s3://"):
        from endpointkit.consume._aws import S3Sink

        return S3Sink(location, **options)
    if location.startswith("gs://"):
        from endpointkit.consume._gcp import GcsSink

        return GcsSink(location, **options)
    if location.startswith("file://"):
        from endpointkit.consume._files import FolderSink

        return FolderSink(location)
    raise ValidationError(
        f"unknown results location {location!r}.",
        hint="Use s3://bucket/prefix, gs://bucket/prefix or file://DIR.",
    )
