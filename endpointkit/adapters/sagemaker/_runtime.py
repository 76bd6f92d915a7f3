"""Invoking SageMaker endpoints: InvokeEndpoint, its response stream, and asynchronous
inference (input uploaded to S3, output polled for).

Invocations are not retried here: `Endpoint.invoke` retries throttling and transient faults
with the invocation policy.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from endpointkit.adapters.sagemaker._artifacts import ArtifactBucket
from endpointkit.adapters.sagemaker._client import Aws
from endpointkit.adapters.sagemaker._errors import BACKEND, aws_errors
from endpointkit.errors import ModelError, Timeout, Unavailable, ValidationError
from endpointkit.invocation import JSON, InvokeRequest, InvokeResult, StreamResult
from endpointkit.retry import poll_until

if TYPE_CHECKING:
    from endpointkit.adapters.sagemaker.backend import SageMakerBackend

__all__ = ["RUNTIME_READ_TIMEOUT_S", "AsyncInvocation", "Runtime"]

MAX_ASYNC_PAYLOAD = 1024 * 1024 * 1024
#: SageMaker allows 60 s per real-time invocation; the client waits a little longer.
RUNTIME_READ_TIMEOUT_S = 70.0


@dataclass
class AsyncInvocation:
    """A queued asynchronous request: poll `done()`, then `result()` reads the output."""

    backend: SageMakerBackend = field(repr=False)
    endpoint: str
    inference_id: str
    output_location: str
    failure_location: str | None = None

    def done(self) -> bool:
        """True once SageMaker has written the output (or the failure)."""
        return self.backend._runtime.done(self)

    def result(self, *, timeout: float = 900.0, poll_s: float = 1.0) -> bytes:
        """The output bytes; ModelError if SageMaker wrote a failure, Timeout if not done."""
        return self.backend._runtime.result(self, timeout=timeout, poll_s=poll_s)


class Runtime:
    """sagemaker-runtime calls, and the S3 side of asynchronous inference."""

    def __init__(self, aws: Aws, bucket: ArtifactBucket) -> None:
        self._aws = aws
        self._bucket = bucket

    def invoke(self, request: InvokeRequest) -> InvokeResult:
        """InvokeEndpoint; not retried here (Endpoint.invoke retries throttling and
        transient faults)."""
        name, version = request.endpoint, request.version
        client = self._aws.client("sagemaker-runtime", request.timeout)
        with aws_errors("invoke", endpoint=name, version=version, region=self._aws.region):
            response = client.invoke_endpoint(**self._invoke_kwargs(request))
            data = response["Body"].read()
        answered = response.get("InvokedProductionVariant")
        headers = {
            "x-amzn-invoked-production-variant": str(answered or ""),
            "content-type": str(response.get("ContentType") or ""),
        }
        return InvokeResult(
            body=data,
            content_type=str(response.get("ContentType") or "application/octet-stream"),
            version=answered,
            custom_attributes=response.get("CustomAttributes"),
            headers={k: v for k, v in headers.items() if v},
        )

    def invoke_stream(self, request: InvokeRequest) -> StreamResult:
        """InvokeEndpointWithResponseStream: the payload parts as they arrive, and the variant
        that answers as `.version`."""
        name, version = request.endpoint, request.version
        client = self._aws.client("sagemaker-runtime", request.timeout)
        with aws_errors("invoke_stream", endpoint=name, version=version, region=self._aws.region):
            response = client.invoke_endpoint_with_response_stream(**self._invoke_kwargs(request))
        events = response["Body"]
        answered = response.get("InvokedProductionVariant") or version
        out_type = str(response.get("ContentType") or "application/octet-stream")
        headers = {
            "x-amzn-invoked-production-variant": str(answered or ""),
            "content-type": out_type,
        }
        return StreamResult(
            self._stream_parts(name, answered, events),
            content_type=out_type,
            version=answered,
            custom_attributes=response.get("CustomAttributes"),
            headers={k: v for k, v in headers.items() if v},
            on_close=events.close,
        )

    def _stream_parts(self, name: str, version: str | None, stream: Any) -> Iterator[bytes]:
        with aws_errors("invoke_stream", endpoint=name, version=version, region=self._aws.region):
            for event in stream:
                part = event.get("PayloadPart")
                if part is not None:
                    yield bytes(part.get("Bytes", b""))
                    continue
                for key in ("ModelStreamError", "InternalStreamFailure"):
                    if key in event:
                        detail = event[key]
                        message = str(detail.get("Message", key))
                        if key == "ModelStreamError":
                            raise ModelError(
                                f"endpoint {name!r} failed while streaming: {message}.",
                                body=message.encode(),
                                backend=BACKEND,
                                operation="invoke_stream",
                                endpoint=name,
                                version=version,
                                provider_code=str(detail.get("ErrorCode") or key),
                            )
                        raise Unavailable(
                            f"endpoint {name!r} stream failed: {message}.",
                            backend=BACKEND,
                            operation="invoke_stream",
                            endpoint=name,
                            provider_code=key,
                        )

    def invoke_async(
        self,
        backend: SageMakerBackend,
        name: str,
        body: bytes | None = None,
        *,
        input_location: str | None = None,
        content_type: str = JSON,
        accept: str | None = None,
        custom_attributes: str | None = None,
        inference_id: str | None = None,
    ) -> AsyncInvocation:
        """InvokeEndpointAsync. `body` is uploaded to the artifact bucket first (or pass an
        s3:// `input_location`); returns a handle (of `backend`) to poll for the result."""
        if (body is None) == (input_location is None):
            raise ValidationError("invoke_async needs exactly one of body or input_location.")
        inference_id = inference_id or uuid.uuid4().hex
        if body is not None:
            if len(body) > MAX_ASYNC_PAYLOAD:
                raise ValidationError(
                    f"request to {name!r} is {len(body):,} bytes; asynchronous inference "
                    f"accepts at most {MAX_ASYNC_PAYLOAD:,}.",
                    endpoint=name,
                )
            bucket = self._bucket.get()
            key = self._bucket.key(name, f"async-inputs/{inference_id}")
            self._aws.call(
                "s3",
                "put_object",
                operation="invoke_async",
                endpoint=name,
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
            )
            input_location = f"s3://{bucket}/{key}"
        kwargs: dict[str, Any] = {
            "EndpointName": name,
            "InputLocation": input_location,
            "ContentType": content_type,
            "InferenceId": inference_id,
        }
        if accept:
            kwargs["Accept"] = accept
        if custom_attributes:
            kwargs["CustomAttributes"] = custom_attributes
        response = self._aws.call(
            "sagemaker-runtime",
            "invoke_endpoint_async",
            operation="invoke_async",
            endpoint=name,
            retry=False,
            **kwargs,
        )
        return AsyncInvocation(
            backend=backend,
            endpoint=name,
            inference_id=str(response.get("InferenceId") or inference_id),
            output_location=str(response["OutputLocation"]),
            failure_location=response.get("FailureLocation"),
        )

    def done(self, handle: AsyncInvocation) -> bool:
        """True once SageMaker has written the output (or the failure)."""
        return self._bucket.exists(handle.output_location) or (
            handle.failure_location is not None and self._bucket.exists(handle.failure_location)
        )

    def result(self, handle: AsyncInvocation, *, timeout: float, poll_s: float) -> bytes:
        """The output bytes; ModelError if SageMaker wrote a failure, Timeout if not done."""

        def written() -> str | None:
            """Where the answer is, once SageMaker wrote it (the failure first)."""
            for uri in (handle.failure_location, handle.output_location):
                if uri and self._bucket.exists(uri):
                    return uri
            return None

        def expired(_: str | None) -> Timeout:
            return Timeout(
                f"asynchronous request {handle.inference_id} to {handle.endpoint!r} has no "
                f"result after {timeout:g} s (expected at {handle.output_location}).",
                backend=BACKEND,
                operation="invoke_async",
                endpoint=handle.endpoint,
            )

        where = poll_until(
            written,
            lambda uri: uri is not None,
            timeout=timeout,
            expired=expired,
            first_s=poll_s,
            max_s=poll_s,
            sleep=self._aws.sleep,
            clock=self._aws.clock,
        )
        data = self._bucket.read(str(where))
        if where == handle.failure_location:
            raise ModelError(
                f"asynchronous request {handle.inference_id} to {handle.endpoint!r} failed: "
                f"{data[:300].decode('utf-8', 'replace')}.",
                body=data,
                backend=BACKEND,
                operation="invoke_async",
                endpoint=handle.endpoint,
            )
        return data

    def _invoke_kwargs(self, request: InvokeRequest) -> dict[str, Any]:
        name, accept, version = request.endpoint, request.accept, request.version
        custom_attributes, inference_id = request.custom_attributes, request.inference_id
        kwargs: dict[str, Any] = {
            "EndpointName": name,
            "Body": request.body,
            "ContentType": request.content_type,
        }
        if accept:
            kwargs["Accept"] = accept
        if version:
            kwargs["TargetVariant"] = version
        if custom_attributes:  # its length was checked before (Backend._check_request)
            kwargs["CustomAttributes"] = custom_attributes
        if inference_id:
            kwargs["InferenceId"] = inference_id
        return kwargs

    # -- state -----------------------------------------------------------------------------------
