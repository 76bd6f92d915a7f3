"""The one place where Google errors become endpointkit errors.

`google_errors(...)` wraps every call of the Vertex backend: GAPIC calls (google.api_core
exceptions over REST or gRPC), Cloud Storage calls (google-cloud-storage raises the same
exceptions) and plain HTTP (httpx). `answer_error(...)` reads an HTTP answer from the
prediction routes: Google's error envelope goes through the same table, anything else is the
model container's own answer. One table (`_RULES`) maps a canonical status (gRPC code name),
an HTTP status and, where it matters, the message to an error and a hint; rules are ordered
most specific first and the first match wins. The original exception is chained and its status
kept in `provider_code`, so nothing from google.api_core leaks out.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from endpointkit.errors import (
    AlreadyExists,
    Conflict,
    EndpointKitError,
    ModelError,
    NotFound,
    NotReady,
    PayloadTooLarge,
    PermissionDenied,
    QuotaExceeded,
    Throttled,
    Timeout,
    Unavailable,
    ValidationError,
)

__all__ = ["BACKEND", "STORAGE", "VERTEX", "answer_error", "google_errors", "status_name"]

BACKEND = "vertex"
VERTEX = "Vertex AI"
STORAGE = "Cloud Storage"
INVOKE = frozenset({"invoke", "invoke_stream"})


@dataclass(frozen=True)
class _Rule:
    """One row: an error for a status, an HTTP code or both, narrowed by the optional fields."""

    error: type[EndpointKitError]
    statuses: frozenset[str] = frozenset()  # canonical status names (gRPC codes)
    http: frozenset[int] = frozenset()
    pattern: re.Pattern[str] | None = None  # and the message matches
    operations: frozenset[str] | None = None  # and only for these operations
    service: str | None = None  # and only for this service
    hint: str = ""

    def matches(self, status: str, http: int, message: str, operation: str, service: str) -> bool:
        if self.operations is not None and operation not in self.operations:
            return False
        if self.service is not None and service != self.service:
            return False
        if self.pattern is not None and not self.pattern.search(message):
            return False
        return status in self.statuses or http in self.http


def _rule(error: type[EndpointKitError], *codes: str | int, **narrowing: Any) -> _Rule:
    statuses = frozenset(c for c in codes if isinstance(c, str))
    http = frozenset(c for c in codes if isinstance(c, int))
    return _Rule(error, statuses, http, **narrowing)


_DENIED_HINT = (
    "Grant the caller roles/aiplatform.user (and storage access to the staging bucket), or "
    "check the credentials."
)
_RULES: tuple[_Rule, ...] = (
    # Narrowed by the message or the operation: these come first.
    _rule(
        NotReady,
        "FAILED_PRECONDITION",
        "INVALID_ARGUMENT",
        400,
        pattern=re.compile(r"traffic[_ ]split"),
        operations=INVOKE,
        hint="Give a version traffic ('endpointkit traffic NAME v1=100').",
    ),
    _rule(PayloadTooLarge, "INVALID_ARGUMENT", 400, 413, pattern=re.compile(r"(?i)payload size")),
    _rule(
        QuotaExceeded,
        "RESOURCE_EXHAUSTED",
        429,
        pattern=re.compile(r"(?i)exceed quota limits|serving_|quota metrics"),
        hint="Request a higher quota in the Cloud console (IAM & Admin > Quotas) or use a "
        "smaller machine or fewer replicas.",
    ),
    _rule(
        NotFound,
        "NOT_FOUND",
        404,
        service=STORAGE,
        hint="Check staging_bucket exists and is readable.",
    ),
    _rule(
        PermissionDenied,
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        401,
        403,
        service=STORAGE,
        hint="Grant the caller roles/storage.objectAdmin on the bucket.",
    ),
    # By status alone.
    _rule(
        NotFound, "NOT_FOUND", 404, hint="Check the name with 'endpointkit list --backend vertex'."
    ),
    _rule(Throttled, "RESOURCE_EXHAUSTED", 429),
    _rule(Unavailable, "UNAVAILABLE", 503, hint="{service} is temporarily unavailable; retried."),
    # A prediction route refusing the request (e.g. FAILED_PRECONDITION, 400) is bad input.
    _rule(ValidationError, 400, operations=INVOKE),
    _rule(AlreadyExists, "ALREADY_EXISTS"),
    _rule(Conflict, "ABORTED", "FAILED_PRECONDITION", 409),
    _rule(PermissionDenied, "PERMISSION_DENIED", "UNAUTHENTICATED", 401, 403, hint=_DENIED_HINT),
    _rule(Timeout, "DEADLINE_EXCEEDED", 504, hint="Retry with a longer timeout."),
    _rule(
        ValidationError,
        "INVALID_ARGUMENT",
        "OUT_OF_RANGE",
        400,
        hint="Fix the request; nothing was changed.",
    ),
)
_FALLBACK_HINT = "Retry later; if it persists, check {service} status."


def refused(
    status: str,
    http: int,
    message: str,
    *,
    operation: str,
    endpoint: str | None,
    version: str | None,
    service: str = VERTEX,
) -> EndpointKitError:
    """The endpointkit error for a Google refusal: the first rule of `_RULES` that matches."""
    rule = next((r for r in _RULES if r.matches(status, http, message, operation, service)), None)
    where = f"{operation} on endpoint {endpoint!r}" if endpoint else operation
    if version:
        where += f" (version {version!r})"
    error = rule.error if rule is not None else EndpointKitError
    hint = rule.hint if rule is not None else _FALLBACK_HINT
    return error(
        f"{service} refused {where}: {message}",
        hint=hint.format(service=service),
        backend=BACKEND,
        operation=operation,
        endpoint=endpoint,
        version=version,
        provider_code=status or str(http),
    )


def status_name(exc: Any) -> str:
    """The canonical status (e.g. FAILED_PRECONDITION) of a google.api_core exception."""
    grpc_code = getattr(exc, "grpc_status_code", None)
    if grpc_code is not None and getattr(grpc_code, "name", None):
        return str(grpc_code.name)
    response = getattr(exc, "response", None)
    with contextlib.suppress(Exception):
        status = response.json()["error"]["status"]  # type: ignore[union-attr]
        if status:
            return str(status)
    return ""


def translate(
    exc: BaseException,
    operation: str,
    *,
    endpoint: str | None = None,
    version: str | None = None,
    service: str = VERTEX,
    address: str = "",
) -> EndpointKitError | None:
    """The endpointkit error for a Google or transport exception, or None if it is neither."""
    context: dict[str, Any] = {
        "backend": BACKEND,
        "operation": operation,
        "endpoint": endpoint,
        "version": version,
    }
    with contextlib.suppress(ImportError):
        from google.api_core import exceptions as gexc

        if isinstance(exc, gexc.GoogleAPICallError):
            message = str(getattr(exc, "message", "") or exc)
            http = int(getattr(exc, "code", 0) or 0)
            status = status_name(exc)
            return refused(status, http, message, service=service, **_names(context))
        if isinstance(exc, gexc.RetryError):
            return Timeout(
                f"{operation} on {endpoint!r} ({BACKEND}) did not finish: {exc}.", **context
            )
    transport = isinstance(exc, OSError)  # requests' errors (google-cloud-storage) are OSErrors
    with contextlib.suppress(ImportError):
        import httpx

        transport = transport or isinstance(exc, httpx.TransportError)
    if transport:
        return Unavailable(
            f"cannot reach {service} at {address} for {operation}: {exc}.",
            hint="Check the network and api_endpoint; the call was retried.",
            **context,
        )
    return None


def _names(context: dict[str, Any]) -> dict[str, Any]:
    return {k: context[k] for k in ("operation", "endpoint", "version")}


@contextlib.contextmanager
def google_errors(
    operation: str,
    *,
    endpoint: str | None = None,
    version: str | None = None,
    service: str = VERTEX,
    address: str = "",
) -> Iterator[None]:
    """Translate the exceptions raised in the block; endpointkit errors get this context."""
    try:
        yield
    except EndpointKitError as exc:
        raise exc.with_context(
            backend=BACKEND, operation=operation, endpoint=endpoint, version=version
        ) from None
    except Exception as exc:
        mapped = translate(
            exc, operation, endpoint=endpoint, version=version, service=service, address=address
        )
        if mapped is None:
            raise
        raise mapped from exc


def google_envelope(body: bytes) -> tuple[str, str] | None:
    """(status, message) if `body` is Google's error envelope, else None (a container answer)."""
    try:
        error = json.loads(body).get("error")
    except Exception:
        return None
    if isinstance(error, dict) and isinstance(error.get("status"), str):
        return error["status"], str(error.get("message", ""))
    return None


def answer_error(
    status: int, body: bytes, *, operation: str, endpoint: str, version: str | None
) -> EndpointKitError:
    """The error for an HTTP answer >= 400 from a prediction route: Google's envelope goes
    through the table; anything else is the container's own answer, passed through."""
    envelope = google_envelope(body)
    if envelope is not None:
        return refused(
            envelope[0],
            status,
            envelope[1],
            operation=operation,
            endpoint=endpoint,
            version=version,
        )
    context: dict[str, Any] = {
        "backend": BACKEND,
        "operation": operation,
        "endpoint": endpoint,
        "version": version,
    }
    if status == 429:
        return Throttled(f"the model on {endpoint!r} is overloaded (429).", **context)
    if status == 503:
        return Unavailable(f"the model on {endpoint!r} is unavailable (503).", **context)
    return ModelError(
        f"the model on endpoint {endpoint!r}"
        + (f" (version {version!r})" if version else "")
        + f" answered {status}: {body[:200].decode('utf-8', 'replace')}",
        status=status,
        body=body,
        **context,
    )
