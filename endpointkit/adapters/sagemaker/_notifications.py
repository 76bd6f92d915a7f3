"""SageMaker asynchronous inference notifications, read back from an SQS queue.

With `success_topic` / `error_topic` in a version's `async_inference` section, the endpoint
config's AsyncInferenceConfig.OutputConfig.NotificationConfig names them (SuccessTopic,
ErrorTopic: docs.aws.amazon.com/sagemaker/latest/APIReference/
API_AsyncInferenceNotificationConfig.html), and SageMaker posts one JSON message per finished
request to one of them (docs.aws.amazon.com/sagemaker/latest/dg/
async-inference-check-predictions.html):

    {"awsRegion": "us-east-1", "eventTime": "...", "receivedTime": "...",
     "invocationStatus": "Completed",            # or "Failed", then with "failureReason"
     "requestParameters": {"contentType": ..., "endpointName": ..., "inputLocation": ...},
     "responseParameters": {"contentType": ..., "outputLocation": "s3://..."},
     "inferenceId": "...", "eventVersion": "1.0", "eventSource": "aws:sagemaker",
     "eventName": "InferenceResult"}

SNS hands it to an SQS subscriber inside its own envelope (`{"Type": "Notification",
"Message": "<that JSON as text>", ...}`), or bare with RawMessageDelivery; both are read.

`Inbox` reads such a queue (the backend's `notification_queue_url` setting: a queue the user
subscribed to the topics). It keeps each SageMaker notification it receives, by endpoint and
inference id, and deletes it from the queue; other messages are made visible again at once.
A request whose notification has not come (or went to another reader of the queue) is looked
up in S3 as without notifications, so the queue only ever adds information: the failure reason
of a request whose endpoint has no failure path, and the answer's location and content type
without a look in S3 first.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from endpointkit.adapters.sagemaker._client import Aws

__all__ = ["Inbox", "parse_notification"]

#: Notifications kept per backend for requests nobody has asked about yet.
_KEEP = 10_000
#: Receive calls per look: enough to empty a busy queue's backlog a little at a time.
_BATCHES = 5


def parse_notification(body: str) -> dict[str, Any] | None:
    """The SageMaker notification in an SQS message body (SNS envelope or raw), else None."""
    try:
        message = json.loads(body)
        if isinstance(message, dict) and message.get("Type") == "Notification":
            message = json.loads(str(message.get("Message", "")))
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("eventSource") != "aws:sagemaker":
        return None
    if message.get("eventName") != "InferenceResult" or not message.get("inferenceId"):
        return None
    return message


class Inbox:
    """SageMaker notifications from one SQS queue, by (endpoint, inference id)."""

    def __init__(self, aws: Aws, queue_url: str) -> None:
        self._aws = aws
        self._queue_url = queue_url
        self._seen: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def notification(self, endpoint: str, inference_id: str) -> dict[str, Any] | None:
        """The request's notification if it has come (reading what the queue holds now)."""
        key = (endpoint, inference_id)
        with self._lock:
            if key not in self._seen:
                self._drain(endpoint)
            return self._seen.get(key)

    def _drain(self, endpoint: str) -> None:
        for _ in range(_BATCHES):
            response = self._aws.call(
                "sqs",
                "receive_message",
                operation="result",
                endpoint=endpoint,
                what=self._queue_url,
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
            )
            messages: list[dict[str, Any]] = response.get("Messages") or []
            if not messages:
                return
            for message in messages:
                note = parse_notification(str(message.get("Body", "")))
                if note is None:
                    self._release(message, endpoint)
                    continue
                params = note.get("requestParameters") or {}
                key = (str(params.get("endpointName", "")), str(note["inferenceId"]))
                self._seen[key] = note
                while len(self._seen) > _KEEP:
                    self._seen.popitem(last=False)
                self._aws.call(
                    "sqs",
                    "delete_message",
                    operation="result",
                    endpoint=endpoint,
                    what=self._queue_url,
                    QueueUrl=self._queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                )

    def _release(self, message: dict[str, Any], endpoint: str) -> None:
        """Someone else's message: visible to other readers again at once."""
        self._aws.call(
            "sqs",
            "change_message_visibility",
            operation="result",
            endpoint=endpoint,
            what=self._queue_url,
            QueueUrl=self._queue_url,
            ReceiptHandle=message["ReceiptHandle"],
            VisibilityTimeout=0,
        )
