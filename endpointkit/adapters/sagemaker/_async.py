"""SageMaker asynchronous inference: InvokeEndpointAsync with the payload in S3, answers read
from the output or failure location, idempotent by inference id.

SageMaker itself queues a request again when the same InferenceId is sent twice, and names the
output object after an id of its own. So each request gets a small record in the artifact
bucket, `<prefix>/<endpoint>/async-invocations/<inference id>.json`, claimed with a
conditional write (S3 `If-None-Match: *`) before anything is queued: the first caller claims it
and queues, a second finds the record and gets the first request's handle. The record also
says where the answer goes, so `find` works from any process (`endpointkit result ID`).

Invocation records and inputs are the endpoint's files: `delete` removes them (their keys
start with `async-`); the answers stay where the endpoint's `async_inference` section put them.

With a notification queue (`_notifications.Inbox`), a request's SNS notification is read first
and S3 only where it says (or, with none yet, as without one).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from endpointkit.adapters.sagemaker._artifacts import ArtifactBucket, split_s3_uri
from endpointkit.adapters.sagemaker._client import Aws
from endpointkit.adapters.sagemaker._errors import BACKEND
from endpointkit.adapters.sagemaker._notifications import Inbox
from endpointkit.async_invocation import AsyncInvocation, AsyncOutcome, InvocationStatus
from endpointkit.errors import Conflict, ModelError, NotFound, Unsupported
from endpointkit.invocation import JSON, InvokeRequest, InvokeResult
from endpointkit.retry import poll_until

if TYPE_CHECKING:
    from endpointkit.adapters.base import Backend
    from endpointkit.spec import AsyncInference

__all__ = ["MAX_ASYNC_PAYLOAD", "AsyncRuntime", "async_inference_config"]

#: InvokeEndpointAsync reads its input from S3: up to 1 GB (research/sagemaker.md).
MAX_ASYNC_PAYLOAD = 1024 * 1024 * 1024
#: A claim with no queued request after this long was left by a caller that died between the
#: claim and InvokeEndpointAsync: the next caller with the id queues it.
STALE_CLAIM_S = 300.0
#: How long a second caller waits for the first to finish queuing the same id.
CLAIM_WAIT_S = 30.0
#: S3's content type for objects written without one.
_S3_DEFAULT_TYPES = ("binary/octet-stream", "application/octet-stream", "")


def async_inference_config(spec: AsyncInference | None) -> dict[str, Any] | None:
    """The endpoint config's AsyncInferenceConfig for a version's `async_inference` section
    (docs.aws.amazon.com/sagemaker/latest/APIReference/API_AsyncInferenceConfig.html)."""
    if spec is None:
        return None
    output: dict[str, Any] = {"S3OutputPath": spec.output_path}
    if spec.failure_path:
        output["S3FailurePath"] = spec.failure_path
    topics = {"SuccessTopic": spec.success_topic, "ErrorTopic": spec.error_topic}
    if any(topics.values()):
        output["NotificationConfig"] = {k: v for k, v in topics.items() if v}
    config: dict[str, Any] = {"OutputConfig": output}
    if spec.max_concurrent_invocations_per_replica:
        config["ClientConfig"] = {
            "MaxConcurrentInvocationsPerInstance": spec.max_concurrent_invocations_per_replica
        }
    return config


class AsyncRuntime:
    """Queue, look up and read asynchronous requests of one SageMakerBackend."""

    def __init__(self, aws: Aws, bucket: ArtifactBucket, queue_url: str | None = None) -> None:
        self._aws = aws
        self._bucket = bucket
        self._inbox = Inbox(aws, queue_url) if queue_url else None

    # -- queue ----------------------------------------------------------------------------------

    def queue(self, backend: Backend, request: InvokeRequest) -> AsyncInvocation:
        """Upload the body, claim the id, InvokeEndpointAsync, record where the answer goes."""
        name, inference_id = request.endpoint, str(request.inference_id)
        if request.version is not None:
            raise Unsupported(
                "SageMaker's InvokeEndpointAsync cannot pin a version (it has no "
                "TargetVariant); nothing was queued.",
                hint="Queue without version=, or pin it with invoke() (real-time endpoints).",
                backend=BACKEND,
                operation="invoke_async",
                endpoint=name,
                version=request.version,
            )
        bucket = self._bucket.get()
        record_key = self._record_key(name, inference_id)
        claim = {"state": "claimed", "claimed_at": time.time()}
        if not self._put(bucket, record_key, json.dumps(claim).encode(), name, only_new=True):
            existing = self._settled_record(bucket, record_key, name, inference_id)
            if existing is not None:
                return self._handle(backend, name, inference_id, existing, duplicate=True)
            # the claimant died before queuing: this caller queues it (and records it below)
        input_key = self._bucket.key(name, f"async-inputs/{inference_id}")
        self._put(bucket, input_key, request.body, name, content_type=request.content_type)
        kwargs: dict[str, Any] = {
            "EndpointName": name,
            "InputLocation": f"s3://{bucket}/{input_key}",
            "ContentType": request.content_type,
            "InferenceId": inference_id,
        }
        if request.accept:
            kwargs["Accept"] = request.accept
        if request.custom_attributes:
            kwargs["CustomAttributes"] = request.custom_attributes
        response = self._aws.call(
            "sagemaker-runtime",
            "invoke_endpoint_async",
            operation="invoke_async",
            endpoint=name,
            retry=False,  # Endpoint.invoke_async retries; the claim makes that safe
            **kwargs,
        )
        record = {
            "state": "queued",
            "output_location": str(response["OutputLocation"]),
            "failure_location": response.get("FailureLocation"),
            "accept": request.accept,
            "queued_at": time.time(),
        }
        self._put(bucket, record_key, json.dumps(record).encode(), name)
        return self._handle(backend, name, inference_id, record, duplicate=False)

    def find(self, backend: Backend, endpoint: str, inference_id: str) -> AsyncInvocation:
        bucket = self._bucket.existing()
        record = (
            self._read_record(bucket, self._record_key(endpoint, inference_id), endpoint)
            if bucket is not None
            else None
        )
        if record is None or record.get("state") != "queued":
            raise NotFound(
                f"no asynchronous request {inference_id!r} was queued on {endpoint!r} by "
                "endpointkit.",
                hint="Check the inference id that 'invoke --async' printed.",
                backend=BACKEND,
                operation="result",
                endpoint=endpoint,
            )
        return self._handle(backend, endpoint, inference_id, record, duplicate=False)

    # -- answers --------------------------------------------------------------------------------

    def outcome(self, invocation: AsyncInvocation) -> AsyncOutcome:
        """The request's notification where a queue is set and it has come; otherwise the
        failure first (SageMaker writes one or the other), then the output."""
        note = (
            self._inbox.notification(invocation.endpoint, invocation.inference_id)
            if self._inbox is not None
            else None
        )
        if note is not None:
            return self._notified(invocation, note)
        failure = invocation.failure_location
        if failure and self._bucket.exists(failure):
            return self._failed(invocation, self._bucket.read(failure))
        if not self._bucket.exists(invocation.output_location):
            return AsyncOutcome(InvocationStatus.QUEUED)
        return self._answer(invocation.output_location)

    def _notified(self, invocation: AsyncInvocation, note: dict[str, Any]) -> AsyncOutcome:
        """What a notification says: Completed reads the answer where it points; anything
        else fails with SageMaker's reason (and the failure body, where one was written)."""
        params = note.get("responseParameters") or {}
        if note.get("invocationStatus") == "Completed":
            output = str(params.get("outputLocation") or invocation.output_location)
            return self._answer(output, str(params.get("contentType") or ""))
        reason = str(note.get("failureReason") or note.get("invocationStatus") or "failed")
        failure = invocation.failure_location
        body = self._bucket.read(failure) if failure and self._bucket.exists(failure) else b""
        return self._failed(invocation, body, reason)

    @staticmethod
    def _failed(invocation: AsyncInvocation, data: bytes, reason: str = "") -> AsyncOutcome:
        said = data[:300].decode("utf-8", "replace")
        error = ModelError(
            f"asynchronous request {invocation.inference_id} to {invocation.endpoint!r} "
            f"failed: {'; '.join(part for part in (reason, said) if part)}",
            body=data or reason.encode(),
            backend=BACKEND,
            operation="invoke_async",
            endpoint=invocation.endpoint,
        )
        return AsyncOutcome(InvocationStatus.FAILED, error=error)

    def _answer(self, output: str, notified_type: str = "") -> AsyncOutcome:
        bucket, key = split_s3_uri(output)
        response = self._aws.call(
            "s3", "get_object", operation="result", what=output, Bucket=bucket, Key=key
        )
        data = bytes(response["Body"].read())
        stored = str(response.get("ContentType") or "")
        content_type = stored if stored not in _S3_DEFAULT_TYPES else notified_type or JSON
        return AsyncOutcome(
            InvocationStatus.COMPLETED, InvokeResult(body=data, content_type=content_type)
        )

    # -- records --------------------------------------------------------------------------------

    def _record_key(self, endpoint: str, inference_id: str) -> str:
        return self._bucket.key(endpoint, f"async-invocations/{inference_id}.json")

    def _settled_record(
        self, bucket: str, key: str, endpoint: str, inference_id: str
    ) -> dict[str, Any] | None:
        """The record of a request another caller queued (waiting while it is being queued);
        None when its claim is stale (that caller died before queuing)."""

        def fetch() -> dict[str, Any]:
            return self._read_record(bucket, key, endpoint) or {"state": "claimed"}

        def settled(record: dict[str, Any]) -> bool:
            stale = time.time() - float(record.get("claimed_at", 0.0)) > STALE_CLAIM_S
            return record.get("state") == "queued" or stale

        def expired(_: dict[str, Any]) -> Exception:
            return Conflict(
                f"asynchronous request {inference_id!r} to {endpoint!r} is being queued by "
                f"another caller, which has not finished after {CLAIM_WAIT_S:g} s.",
                hint="Retry shortly: the same inference id then returns that request's handle.",
                backend=BACKEND,
                operation="invoke_async",
                endpoint=endpoint,
            )

        record = poll_until(
            fetch,
            settled,
            timeout=CLAIM_WAIT_S,
            expired=expired,
            first_s=0.05,
            max_s=1.0,
            sleep=self._aws.sleep,
            clock=self._aws.clock,
        )
        return record if record.get("state") == "queued" else None

    def _read_record(self, bucket: str, key: str, endpoint: str) -> dict[str, Any] | None:
        uri = f"s3://{bucket}/{key}"
        try:
            data = self._bucket.read(uri)
        except NotFound:
            return None
        try:
            record = json.loads(data)
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    def _put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        endpoint: str,
        *,
        content_type: str = JSON,
        only_new: bool = False,
    ) -> bool:
        """Write an object; with `only_new`, only if absent (False if it was there)."""
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if only_new else {}
        try:
            self._aws.call(
                "s3",
                "put_object",
                operation="invoke_async",
                endpoint=endpoint,
                what=f"s3://{bucket}/{key}",
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                **extra,
            )
        except Conflict:
            if only_new:
                return False
            raise
        return True

    @staticmethod
    def _handle(
        backend: Backend,
        endpoint: str,
        inference_id: str,
        record: dict[str, Any],
        *,
        duplicate: bool,
    ) -> AsyncInvocation:
        return AsyncInvocation(
            backend,
            endpoint,
            inference_id,
            str(record["output_location"]),
            record.get("failure_location"),
            duplicate=duplicate,
        )
