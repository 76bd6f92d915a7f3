"""The one place where botocore exceptions become endpointkit errors.

`aws_errors(...)` wraps every AWS call of the SageMaker backend. The most specific match wins;
the original exception is chained (`raise ... from exc`) and its code kept in
`provider_code`, so nothing from botocore leaks out. botocore is imported only when an
exception actually needs translating.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from endpointkit.errors import (
    AlreadyExists,
    Conflict,
    EndpointKitError,
    ModelError,
    NotFound,
    NotReady,
    PermissionDenied,
    QuotaExceeded,
    Throttled,
    Timeout,
    Unavailable,
    ValidationError,
)

__all__ = ["BACKEND", "aws_errors", "log_group"]

BACKEND = "sagemaker"

_THROTTLING = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "ProvisionedThroughputExceededException",
    }
)
_DENIED = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
_TRANSIENT = frozenset(
    {
        "InternalFailure",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalDependencyException",
        "InternalStreamFailure",
    }
)
_NOT_FOUND = frozenset(
    {
        "ResourceNotFound",
        "ResourceNotFoundException",
        "ObjectNotFoundException",
        "NoSuchKey",
        "NoSuchBucket",
        "NotFound",
        "404",
    }
)
_MISSING = re.compile(r"could not find|not found|does not exist", re.IGNORECASE)
_IN_PROGRESS = re.compile(
    r"in-progress|in progress|cannot update|is not in service|not in a valid state|"
    r"currently being|status .*(Creating|Updating|Deleting)",
    re.IGNORECASE,
)


def log_group(endpoint: str) -> str:
    """CloudWatch log group where SageMaker writes an endpoint's container logs."""
    return f"/aws/sagemaker/Endpoints/{endpoint}"


@contextmanager
def aws_errors(
    operation: str,
    *,
    endpoint: str | None = None,
    version: str | None = None,
    region: str | None = None,
    what: str | None = None,
) -> Iterator[None]:
    """Translate botocore exceptions raised in the block; endpointkit errors pass through.

    `what` names the resource for messages (default: the endpoint).
    """
    try:
        yield
    except EndpointKitError:
        raise
    except Exception as exc:
        mapped = translate(
            exc, operation, endpoint=endpoint, version=version, region=region, what=what
        )
        if mapped is None:
            raise
        raise mapped from exc


def translate(
    exc: BaseException,
    operation: str,
    *,
    endpoint: str | None = None,
    version: str | None = None,
    region: str | None = None,
    what: str | None = None,
) -> EndpointKitError | None:
    """The endpointkit error for a botocore exception, or None if `exc` is not botocore's."""
    try:
        from botocore import exceptions as bce
    except ImportError:  # pragma: no cover - boto3 is required to get here at all
        return None
    context: dict[str, Any] = {
        "backend": BACKEND,
        "operation": operation,
        "endpoint": endpoint,
        "version": version,
    }
    where = f"sagemaker ({region})" if region else "sagemaker"
    subject = what or (f"endpoint {endpoint!r}" if endpoint else "the request")
    if isinstance(exc, bce.ClientError):
        return _client_error(exc, subject, where, context)
    if isinstance(exc, bce.ParamValidationError):
        return ValidationError(
            f"{operation} on {subject}: the request is invalid: {exc}.",
            hint="This is likely an endpointkit bug; please report it with the message.",
            **context,
        )
    if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError)):
        return PermissionDenied(
            f"{operation} on {subject} needs AWS credentials and none were found ({exc}).",
            hint="Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or pass the "
            "'profile' setting.",
            **context,
        )
    if isinstance(exc, bce.ProfileNotFound):
        return ValidationError(
            f"AWS profile not found: {exc}.",
            hint="Check the 'profile' setting or AWS_PROFILE (see ~/.aws/config).",
            **context,
        )
    if isinstance(exc, bce.NoRegionError):
        return ValidationError(
            "no AWS region is configured for the sagemaker backend.",
            hint="Pass the 'region' setting (--set region=eu-west-1) or set AWS_REGION.",
            **context,
        )
    if isinstance(exc, bce.ReadTimeoutError):
        return Timeout(
            f"{operation} on {subject} got no answer in time from {where} ({exc}).",
            hint="SageMaker allows 60 s per real-time request; use asynchronous inference for "
            "longer requests.",
            **context,
        )
    if isinstance(
        exc,
        (
            bce.EndpointConnectionError,
            bce.ConnectionClosedError,
            bce.ConnectTimeoutError,
            bce.ConnectionError,
        ),
    ):
        return Unavailable(
            f"{operation} on {subject}: could not reach {where}: {exc}.",
            hint="Check the network and the endpoint_url/AWS_ENDPOINT_URL settings.",
            **context,
        )
    if isinstance(exc, bce.EventStreamError):
        return _client_error(exc, subject, where, context)
    if isinstance(exc, bce.BotoCoreError):
        return Unavailable(f"{operation} on {subject} failed in botocore: {exc}.", **context)
    return None


def _client_error(exc: Any, subject: str, where: str, context: dict[str, Any]) -> EndpointKitError:
    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    error = response.get("Error") or {}
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or exc)
    status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    operation = context["operation"]
    context = {**context, "provider_code": code or None}

    if code == "ModelError":
        original_status = response.get("OriginalStatusCode")
        original = str(response.get("OriginalMessage") or "")
        log_stream = response.get("LogStreamArn")
        version = context.get("version")
        who = f"version {version!r} of " if version else ""
        logs = f" Logs: {log_stream}" if log_stream else ""
        return ModelError(
            f"{who}endpoint {context.get('endpoint')!r} answered {original_status}: "
            f"{original[:300] or message}.{logs}",
            status=int(original_status) if original_status is not None else None,
            body=original.encode(),
            hint="The model container rejected or failed the request; fix the input or the model.",
            **context,
        )
    if code == "ModelNotReadyException":
        return NotReady(f"{subject} on {where} is not ready: {message}.", **context)
    if code == "ModelStreamError":
        return ModelError(
            f"{subject} failed while streaming: {message}.",
            status=None,
            body=message.encode(),
            **context,
        )
    if code in _THROTTLING:
        return Throttled(
            f"{operation} on {subject} was throttled by {where}: {message}.", **context
        )
    if code in _DENIED or status == 403:
        return PermissionDenied(
            f"{operation} on {subject} was denied by {where}: {message}.",
            hint="Grant the missing permission to the credentials in use, or use another profile.",
            **context,
        )
    if code == "ResourceLimitExceeded" or code.endswith("LimitExceededException"):
        return QuotaExceeded(
            f"{operation} on {subject} hit a limit on {where}: {message}.",
            hint="Request a quota increase (Service Quotas console) or use fewer/smaller "
            "instances.",
            **context,
        )
    if code in ("ResourceInUse", "ResourceInUseException", "ConflictException"):
        return Conflict(f"{operation} on {subject}: {message}.", **context)
    if code in _TRANSIENT or status >= 500 or (code.isdigit() and int(code) >= 500):
        return Unavailable(
            f"{operation} on {subject} failed on {where} with a server error "
            f"({code or status}): {message}.",
            hint="A transient fault; endpointkit retried. Try again later.",
            **context,
        )
    if (
        code in _NOT_FOUND
        or status == 404
        or (code in ("ValidationException", "ValidationError") and _MISSING.search(message))
    ):
        return NotFound(
            f"{subject} not found on {where}: {message}.",
            hint="Run 'endpointkit list --backend sagemaker' to see endpoints.",
            **context,
        )
    if code in ("ValidationException", "ValidationError") and "already exist" in message:
        return AlreadyExists(f"{subject} already exists on {where}: {message}.", **context)
    if code in ("ValidationException", "ValidationError") and _IN_PROGRESS.search(message):
        return Conflict(f"{operation} on {subject} refused by {where}: {message}.", **context)
    if code in ("PreconditionFailed", "ConditionalRequestConflict"):
        return Conflict(f"{operation} on {subject}: {message}.", **context)
    return ValidationError(
        f"{where} rejected {operation} on {subject}: {message}.",
        hint="Fix the value named in the message and try again.",
        **context,
    )
