"""An SQS queue as a source and an S3 prefix as a sink, through boto3.

boto3 is imported when one is opened, never by `import endpointkit`; botocore errors become
endpointkit errors in the SageMaker adapter's one translation table (`aws_errors`). Clients
take the usual AWS configuration (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL...), and botocore's
standard retry mode handles throttling of the queue and bucket calls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from endpointkit.adapters.sagemaker._errors import aws_errors
from endpointkit.consume._core import ATTRIBUTES, Message
from endpointkit.errors import MissingDependency, NotFound, ValidationError
from endpointkit.invocation import InvokeResult

__all__ = ["S3Sink", "SqsSource", "aws_client"]

#: SQS's longest long poll and longest visibility timeout, seconds.
MAX_WAIT_S = 20
MAX_VISIBILITY_S = 12 * 60 * 60
_NO_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


def aws_client(service: str, *, region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A boto3 client for `service` with the standard retry mode; MissingDependency without
    boto3."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise MissingDependency(
            f"consuming from SQS and writing to S3 needs boto3 ({service}).",
            hint="pip install 'endpointkit[sagemaker]'",
        ) from exc
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        read_timeout=MAX_WAIT_S + 10,  # longer than a long poll
        user_agent_extra="endpointkit/0.1",
    )
    with aws_errors("connect", what=service):
        session = boto3.session.Session(region_name=region)
        return session.client(service, endpoint_url=endpoint_url, config=config)


class SqsSource:
    """Messages of an SQS queue (standard or FIFO), named by `sqs://NAME` or its https URL."""

    def __init__(self, queue: str, *, client: Any = None, region: str | None = None) -> None:
        self._sqs = client or aws_client("sqs", region=region)
        self.description = queue
        if queue.startswith(("https://", "http://")):
            self.url = queue
        else:
            name = queue.removeprefix("sqs://").strip("/")
            if not name:
                raise ValidationError(f"{queue!r} names no queue; use sqs://NAME.")
            try:
                with aws_errors("consume", what=f"queue {name!r}"):
                    self.url = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except ValidationError as exc:
                if exc.provider_code not in _NO_QUEUE:
                    raise
                raise NotFound(
                    f"SQS queue {name!r} does not exist in this account and region.",
                    hint="Check the name and --region (or AWS_REGION); 'aws sqs list-queues' "
                    "lists queues.",
                    operation="consume",
                    provider_code=exc.provider_code,
                ) from exc

    def _call(self, method: str, **kwargs: Any) -> Any:
        with aws_errors("consume", what=f"queue {self.description!r}"):
            return getattr(self._sqs, method)(QueueUrl=self.url, **kwargs)

    def receive(self, max_messages: int, wait_s: float, visibility_s: float) -> list[Message]:
        answer = self._call(
            "receive_message",
            MaxNumberOfMessages=max(1, min(max_messages, 10)),
            WaitTimeSeconds=min(MAX_WAIT_S, math.ceil(wait_s)),
            VisibilityTimeout=_seconds(visibility_s),
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        )
        return [_message(raw) for raw in answer.get("Messages", [])]

    def extend(self, messages: Sequence[Message], visibility_s: float) -> None:
        for start in range(0, len(messages), 10):
            entries = [
                {
                    "Id": str(i),
                    "ReceiptHandle": m.handle,
                    "VisibilityTimeout": _seconds(visibility_s),
                }
                for i, m in enumerate(messages[start : start + 10])
            ]
            answer = self._call("change_message_visibility_batch", Entries=entries)
            for failed in answer.get("Failed", []):
                message = messages[start + int(failed["Id"])]
                raise NotFound(
                    f"the visibility of message {message.id} on {self.description} could not be "
                    f"extended: {failed.get('Message') or failed.get('Code')}.",
                    operation="consume",
                    provider_code=failed.get("Code"),
                )

    def release(self, message: Message, delay_s: float) -> None:
        self._call(
            "change_message_visibility",
            ReceiptHandle=message.handle,
            VisibilityTimeout=_seconds(delay_s),
        )

    def delete(self, message: Message) -> None:
        self._call("delete_message", ReceiptHandle=message.handle)

    def close(self) -> None:
        self._sqs.close()


def _seconds(value: float) -> int:
    return max(0, min(MAX_VISIBILITY_S, math.ceil(value)))


def _message(raw: Mapping[str, Any]) -> Message:
    body = raw.get("Body", "")
    attributes = {
        name: str(value["StringValue"])
        for name, value in (raw.get("MessageAttributes") or {}).items()
        if name in ATTRIBUTES and "StringValue" in value
    }
    count = int((raw.get("Attributes") or {}).get("ApproximateReceiveCount", 1))
    return Message(
        id=raw["MessageId"],
        body=body.encode() if isinstance(body, str) else bytes(body),
        attributes=attributes,
        receive_count=count,
        handle=raw["ReceiptHandle"],
    )


class S3Sink:
    """Results under `s3://bucket/prefix/`: `<key>.out` (the answer, with its content type and
    the serving version as object metadata) and `<key>.error` (JSON)."""

    def __init__(self, location: str, *, client: Any = None, region: str | None = None) -> None:
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        if not location.startswith("s3://") or not bucket:
            raise ValidationError(f"{location!r} is not an s3://bucket/prefix location.")
        self._s3 = client or aws_client("s3", region=region)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.description = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str, suffix: str) -> str:
        return f"{self.prefix}/{key}{suffix}" if self.prefix else f"{key}{suffix}"

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def stored(self, key: str) -> str | None:
        for suffix in (".out", ".error"):
            name = self._key(key, suffix)
            try:
                with aws_errors("consume", what=self._where(name)):
                    self._s3.head_object(Bucket=self.bucket, Key=name)
            except NotFound:
                continue
            return self._where(name)
        return None

    def write_result(self, key: str, result: InvokeResult, message: Message) -> str:
        metadata = {"endpointkit-message-id": message.id}
        if result.version and result.version.isascii():
            metadata["endpointkit-version"] = result.version
        return self._put(self._key(key, ".out"), result.body, result.content_type, metadata)

    def write_error(self, key: str, error: Mapping[str, Any], message: Message) -> str:
        body = orjson.dumps(dict(error), default=str)
        metadata = {"endpointkit-message-id": message.id}
        return self._put(self._key(key, ".error"), body, "application/json", metadata)

    def _put(self, name: str, body: bytes, content_type: str, metadata: dict[str, str]) -> str:
        where = self._where(name)
        with aws_errors("consume", what=where):
            self._s3.put_object(
                Bucket=self.bucket,
                Key=name,
                Body=body,
                ContentType=content_type,
                Metadata=metadata,
            )
        return where

    def close(self) -> None:
        self._s3.close()
