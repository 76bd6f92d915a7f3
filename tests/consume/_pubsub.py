"""Google's own Pub/Sub emulator (the Cloud SDK's `pubsub-emulator` component, Java) on a free
127.0.0.1 port for the consumer's tests, and topics and subscriptions made with the real
client. Where the emulator or Java is missing, the tests that need it are skipped."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PROJECT = "endpointkit-tests"
_names = itertools.count()
_SCRIPT = Path("platform/pubsub-emulator/bin/cloud-pubsub-emulator")
INSTALL = (
    "the Pub/Sub emulator is not installed: install Java and the Cloud SDK component "
    "(apt-get install google-cloud-cli-pubsub-emulator from Google's apt repository, or "
    "'gcloud components install pubsub-emulator'), or set PUBSUB_EMULATOR_BIN to its "
    "bin/cloud-pubsub-emulator script"
)


def emulator_script() -> Path | None:
    """The emulator's start script: PUBSUB_EMULATOR_BIN, next to gcloud, or the apt location."""
    candidates = []
    if os.environ.get("PUBSUB_EMULATOR_BIN"):
        candidates.append(Path(os.environ["PUBSUB_EMULATOR_BIN"]))
    gcloud = shutil.which("gcloud")
    if gcloud:
        candidates.append(Path(os.path.realpath(gcloud)).parent.parent / _SCRIPT)
    candidates.append(Path("/usr/lib/google-cloud-sdk") / _SCRIPT)
    return next((c for c in candidates if c.is_file()), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_emulator(log: Path) -> Iterator[str]:
    """Start the emulator, yield its host:port, stop it (and every process it started)."""
    script = emulator_script()
    if script is None or shutil.which("java") is None:
        pytest.skip(INSTALL)
    port = _free_port()
    with open(log, "wb") as out:
        child = subprocess.Popen(
            [str(script), "--host=127.0.0.1", f"--port={port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the stop reaches java too
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            if child.poll() is not None:
                raise RuntimeError(f"the Pub/Sub emulator exited: {log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the Pub/Sub emulator did not start within 90 s") from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()


@dataclass
class Subscription:
    """A topic and its pull subscription on the emulator."""

    topic: str
    path: str  # projects/P/subscriptions/S
    publisher: Any
    subscriber: Any
    dead_letter_topic: str | None = None
    published: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"pubsub://{self.path}"

    def publish(self, bodies: Sequence[bytes], **attributes: str) -> list[str]:
        from google.pubsub_v1.types import PubsubMessage

        messages = [PubsubMessage(data=body, attributes=attributes) for body in bodies]
        ids = list(self.publisher.publish(topic=self.topic, messages=messages).message_ids)
        self.published.extend(ids)
        return ids

    def left(self) -> set[str]:
        """Ids of the messages still on the subscription (pulled, not acked: they come back
        after the ack deadline)."""
        from google.api_core.exceptions import DeadlineExceeded

        found: set[str] = set()
        while True:
            try:
                answer = self.subscriber.pull(
                    subscription=self.path, max_messages=100, timeout=3, retry=None
                )
            except DeadlineExceeded:
                return found
            got = {r.message.message_id for r in answer.received_messages}
            if not got - found:
                return found
            found |= got


class PubSub:
    """The emulator's address and the real clients, pointed at it."""

    def __init__(self, host: str) -> None:
        import grpc
        from google import pubsub_v1
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
        from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

        # The plain GAPIC clients (synchronous publish, no batching thread) on the emulator's
        # plaintext port, as google-cloud-pubsub connects to it under PUBSUB_EMULATOR_HOST.
        self.host = host
        self._channels = [grpc.insecure_channel(host), grpc.insecure_channel(host)]
        self.publisher = pubsub_v1.PublisherClient(
            transport=PublisherGrpcTransport(channel=self._channels[0])
        )
        self.subscriber = pubsub_v1.SubscriberClient(
            transport=SubscriberGrpcTransport(channel=self._channels[1])
        )

    def subscription(self, *, ack_deadline_s: int = 10, dead_letter: bool = False) -> Subscription:
        """A fresh topic and pull subscription; with `dead_letter`, a dead-letter policy (so
        Pub/Sub counts delivery attempts) after 100 attempts."""
        n = next(_names)
        topic = f"projects/{PROJECT}/topics/requests-{n}"
        path = f"projects/{PROJECT}/subscriptions/consumer-{n}"
        self.publisher.create_topic(name=topic)
        request: dict[str, Any] = {
            "name": path,
            "topic": topic,
            "ack_deadline_seconds": ack_deadline_s,
        }
        dead = None
        if dead_letter:
            dead = f"projects/{PROJECT}/topics/dead-{n}"
            self.publisher.create_topic(name=dead)
            request["dead_letter_policy"] = {
                "dead_letter_topic": dead,
                "max_delivery_attempts": 100,
            }
        self.subscriber.create_subscription(request=request)
        return Subscription(topic, path, self.publisher, self.subscriber, dead)

    def close(self) -> None:
        for channel in self._channels:
            channel.close()
