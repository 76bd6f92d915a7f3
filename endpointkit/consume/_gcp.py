"""A Pub/Sub subscription as a source and a Cloud Storage prefix as a sink.

The source pulls synchronously (`Subscriber.pull`, at most as many messages as the consumer
has free slots), so every message it holds is one the consumer is working on: nothing waits
leased in a client-side buffer, as it would with StreamingPull's flow control, and a stop
knows exactly which messages to give back. The mapping onto the consumer's protocol:

- visibility timeout -> ack deadline: set to `visibility_s` right after the pull and extended
  by the heartbeat with `modify_ack_deadline` (Pub/Sub allows at most 600 s per extension);
- release -> `modify_ack_deadline` to the backoff delay (0 on stop: a nack);
- delete -> `acknowledge`, called only once the result is stored;
- receive count -> the message's `delivery_attempt` when the subscription has a dead-letter
  policy (Pub/Sub counts then); without one Pub/Sub does not count deliveries, and the
  deliveries this process has seen stand in (a restart starts again from 1).

Clients are google-cloud-pubsub's and google-cloud-storage's own, imported when a source or
sink is opened; both honour their emulators (PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST) and
Application Default Credentials. Google errors become endpointkit errors in the Vertex
adapter's one translation table (`google_errors`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from endpointkit.adapters.vertex._errors import STORAGE, google_errors
from endpointkit.consume._core import ATTRIBUTES, Message
from endpointkit.errors import (
    EndpointKitError,
    MissingDependency,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from endpointkit.invocation import InvokeResult

__all__ = ["GcsSink", "PubSubSource"]

log = logging.getLogger("endpointkit.consume")

PUBSUB = "Cloud Pub/Sub"
#: Pub/Sub's longest ack deadline, seconds (modify_ack_deadline refuses more).
MAX_DEADLINE_S = 600
_MAX_SEEN = 100_000  # message ids whose deliveries are counted here
_EXTEND_BATCH = 100  # ack ids per modify_ack_deadline request (requests are capped at 512 KB)
_SUBSCRIPTION = re.compile(r"projects/[^/]+/subscriptions/[^/]+")


def _missing(exc: ImportError, what: str, package: str) -> MissingDependency:
    from endpointkit.extras import install_hint

    return MissingDependency(
        f"{what} needs {package} ({exc.name} is missing).", hint=install_hint("pubsub")
    )


def subscription_path(location: str) -> str:
    """`projects/P/subscriptions/S` from `pubsub://projects/P/subscriptions/S`."""
    path = location.removeprefix("pubsub://").strip("/")
    if not location.startswith("pubsub://") or not _SUBSCRIPTION.fullmatch(path):
        raise ValidationError(
            f"{location!r} is not a Pub/Sub subscription.",
            hint="Use pubsub://projects/PROJECT/subscriptions/SUBSCRIPTION (the subscription's "
            "full name, as 'gcloud pubsub subscriptions list' shows it).",
        )
    return path


@contextlib.contextmanager
def _google(
    service: str, *, emulator: str, not_found: str, denied: str, address: str = ""
) -> Iterator[None]:
    """The Vertex adapter's translation (`google_errors`) for a queue or a bucket: hints about
    the subscription or bucket instead of an endpoint's, no backend named, and no credentials
    (google.auth's own error) as PermissionDenied."""
    try:
        with google_errors("consume", service=service, address=address):
            yield
    except (NotFound, PermissionDenied) as exc:
        hint = not_found if isinstance(exc, NotFound) else denied
        raise type(exc)(
            exc.message, hint=hint, operation="consume", provider_code=exc.provider_code
        ) from (exc.__cause__ or exc)
    except EndpointKitError as exc:
        exc.backend = None  # not the Vertex backend's error
        raise
    except Exception as exc:
        if type(exc).__name__ != "DefaultCredentialsError":
            raise
        raise PermissionDenied(
            f"no Google credentials for {service}: {exc}",
            hint="Run 'gcloud auth application-default login' or set "
            f"GOOGLE_APPLICATION_CREDENTIALS (for an emulator, set {emulator}).",
            operation="consume",
        ) from exc


class PubSubSource:
    """Messages of a pull subscription, `pubsub://projects/P/subscriptions/S`."""

    def __init__(self, location: str, *, client: Any = None) -> None:
        self.subscription = subscription_path(location)
        self.description = f"pubsub://{self.subscription}"
        try:
            from google.api_core import exceptions
            from google.cloud import pubsub_v1  # type: ignore[attr-defined]
        except ImportError as exc:
            raise _missing(exc, "consuming from Pub/Sub", "google-cloud-pubsub") from exc
        self._deadline_exceeded: type[Exception] = exceptions.DeadlineExceeded
        self._address = os.environ.get("PUBSUB_EMULATOR_HOST") or "pubsub.googleapis.com"
        with self._errors():
            self._client = client or pubsub_v1.SubscriberClient()
        self._seen: dict[str, int] = {}  # deliveries seen here, by message id (no DLQ policy)
        self._lock = threading.Lock()
        self._check()

    def _errors(self) -> Any:
        project = self.subscription.split("/")[1]
        return _google(
            PUBSUB,
            emulator="PUBSUB_EMULATOR_HOST",
            address=self._address,
            not_found=f"Check that {self.subscription} exists: 'gcloud pubsub subscriptions "
            f"list --project {project}' lists them.",
            denied=f"Grant the caller roles/pubsub.subscriber on {self.subscription}.",
        )

    def _check(self) -> None:
        """NotFound for a missing subscription; ValidationError for a push one."""
        try:
            with self._errors():
                found = self._client.get_subscription(subscription=self.subscription)
        except PermissionDenied:
            return  # roles/pubsub.subscriber may pull without seeing the configuration
        if found.push_config.push_endpoint:
            raise ValidationError(
                f"Pub/Sub subscription {self.subscription!r} pushes to "
                f"{found.push_config.push_endpoint}; a consumer needs a pull subscription.",
                hint="Create a pull subscription on the same topic.",
            )

    def receive(self, max_messages: int, wait_s: float, visibility_s: float) -> list[Message]:
        deadline = _deadline(visibility_s)
        with self._errors():
            try:
                answer = self._client.pull(
                    subscription=self.subscription,
                    max_messages=max(1, max_messages),
                    timeout=max(1.0, wait_s),
                    retry=None,  # the consumer backs off on Retryable itself
                )
            except self._deadline_exceeded:
                return []  # nothing arrived while waiting
        received = list(answer.received_messages)
        if not received:
            return []
        try:  # the subscription's own deadline applies until now; take the consumer's
            self._modify([r.ack_id for r in received], deadline)
        except Exception as exc:  # the heartbeat extends them later: a duplicate, never a loss
            log.warning("could not set the ack deadline of %d messages: %s", len(received), exc)
        return [self._message(r) for r in received]

    def _message(self, raw: Any) -> Message:
        data = raw.message
        with self._lock:
            seen = self._seen[data.message_id] = self._seen.get(data.message_id, 0) + 1
            if len(self._seen) > _MAX_SEEN:  # ids given back and taken by other consumers
                del self._seen[next(iter(self._seen))]
        return Message(
            id=data.message_id,
            body=bytes(data.data),
            attributes={k: str(v) for k, v in data.attributes.items() if k in ATTRIBUTES},
            receive_count=int(raw.delivery_attempt) or seen,
            handle=raw.ack_id,
        )

    def _modify(self, ack_ids: Sequence[str], seconds: int) -> None:
        for start in range(0, len(ack_ids), _EXTEND_BATCH):
            with self._errors():
                self._client.modify_ack_deadline(
                    subscription=self.subscription,
                    ack_ids=list(ack_ids[start : start + _EXTEND_BATCH]),
                    ack_deadline_seconds=seconds,
                )

    def extend(self, messages: Sequence[Message], visibility_s: float) -> None:
        self._modify([m.handle for m in messages], _deadline(visibility_s))

    def release(self, message: Message, delay_s: float) -> None:
        self._modify([message.handle], max(0, min(MAX_DEADLINE_S, math.ceil(delay_s))))

    def delete(self, message: Message) -> None:
        with self._errors():
            self._client.acknowledge(subscription=self.subscription, ack_ids=[message.handle])
        with self._lock:
            self._seen.pop(message.id, None)

    def close(self) -> None:
        self._client.close()


def _deadline(visibility_s: float) -> int:
    if visibility_s > MAX_DEADLINE_S:
        raise ValidationError(
            f"a Pub/Sub ack deadline is at most {MAX_DEADLINE_S} s, not {visibility_s:g}.",
            hint=f"Use --visibility-timeout {MAX_DEADLINE_S} or less; the deadline is extended "
            "while an invoke runs anyway.",
        )
    return max(1, math.ceil(visibility_s))


def _storage_errors(bucket: str) -> Any:
    return _google(
        STORAGE,
        emulator="STORAGE_EMULATOR_HOST",
        not_found=f"Check that the bucket gs://{bucket} exists ('gcloud storage ls').",
        denied=f"Grant the caller roles/storage.objectAdmin on gs://{bucket}.",
    )


class GcsSink:
    """Results under `gs://bucket/prefix/`: `<key>.out` (the answer, with its content type and
    the serving version as object metadata) and `<key>.error` (JSON). Each object is one
    upload, which Cloud Storage makes visible whole or not at all."""

    def __init__(self, location: str, *, client: Any = None, project: str | None = None) -> None:
        bucket, _, prefix = location.removeprefix("gs://").partition("/")
        if not location.startswith("gs://") or not bucket:
            raise ValidationError(f"{location!r} is not a gs://bucket/prefix location.")
        if client is None:
            try:
                from google.cloud import storage  # type: ignore[attr-defined]
            except ImportError as exc:
                raise _missing(
                    exc, "writing results to Cloud Storage", "google-cloud-storage"
                ) from exc
            with _storage_errors(bucket):
                client = storage.Client(project=project)
        self._gcs = client
        self._bucket = client.bucket(bucket)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.description = f"gs://{bucket}/{self.prefix}".rstrip("/")

    def _name(self, key: str, suffix: str) -> str:
        return f"{self.prefix}/{key}{suffix}" if self.prefix else f"{key}{suffix}"

    def _where(self, name: str) -> str:
        return f"gs://{self.bucket}/{name}"

    def stored(self, key: str) -> str | None:
        for suffix in (".out", ".error"):
            name = self._name(key, suffix)
            with _storage_errors(self.bucket):
                if self._bucket.blob(name).exists():
                    return self._where(name)
        return None

    def write_result(self, key: str, result: InvokeResult, message: Message) -> str:
        metadata = {"endpointkit-message-id": message.id}
        if result.version:
            metadata["endpointkit-version"] = result.version
        return self._put(self._name(key, ".out"), result.body, result.content_type, metadata)

    def write_error(self, key: str, error: Mapping[str, Any], message: Message) -> str:
        body = orjson.dumps(dict(error), default=str)
        metadata = {"endpointkit-message-id": message.id}
        return self._put(self._name(key, ".error"), body, "application/json", metadata)

    def _put(self, name: str, body: bytes, content_type: str, metadata: dict[str, str]) -> str:
        blob = self._bucket.blob(name)
        blob.metadata = metadata
        with _storage_errors(self.bucket):
            blob.upload_from_string(body, content_type=content_type)
        return self._where(name)

    def close(self) -> None:
        self._gcs.close()
