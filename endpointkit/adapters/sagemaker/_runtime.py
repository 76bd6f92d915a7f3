"""Invoking SageMaker endpoints: InvokeEndpoint and its response stream (asynchronous
inference is in `_async.py`).

Invocations are not retried here: `Endpoint.invoke` retries throttling and transient faults
with the invocation policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from endpointkit.adapters.sagemaker._artifacts import ArtifactBucket
from endpointkit.adapters.sagemaker._client import Aws
from endpointkit.adapters.sagemaker._errors import BACKEND, aws_errors
from endpointkit.errors import ModelError, Unavailable
from endpointkit.invocation import InvokeRequest, InvokeResult, StreamResult

if TYPE_CHECKING:
    pass

__all__ = ["RUNTIME_READ_TIMEOUT_S", "Runtime"]

#: SageMaker allows 60 s per real-time invocation; the client waits a little longer.
RUNTIME_READ_TIMEOUT_S = 70.0


class Runtime:
    """sagemaker-runtime calls for real-time invocations."""

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
