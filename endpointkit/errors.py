"""The one exception tree of endpointkit.

```
EndpointKitError                .backend .operation .endpoint .version .provider_code .hint
├── ValidationError(ValueError)     bad spec or input, raised before any call
│   ├── UnknownBackend              no backend registered under that name
│   └── PayloadTooLarge             request body over the platform limit
├── MissingDependency(ImportError)  an optional extra is not installed
├── NotFound                        endpoint or version does not exist
├── AlreadyExists                   a create found the resource already there
├── Conflict                        the resource is busy or in the wrong state
├── PermissionDenied                credentials lack a permission
├── QuotaExceeded                   a quota or resource limit was hit
├── Unsupported                     the backend lacks the feature (names the backend)
├── Retryable                       safe to try again after a pause
│   ├── Throttled                   the provider asked us to slow down
│   ├── Unavailable                 a transient fault (5xx, connection reset)
│   └── NotReady                    the endpoint or model is still starting
├── Timeout                         a wait or a call ran out of time (.last_status)
├── ModelError                      the model container answered with an error (.status .body)
├── DeploymentFailed                the platform failed a deployment (.reason .log_hint)
└── RolledBack                      a rollout gate failed and traffic was restored (.reason)
SettingIgnoredWarning(UserWarning)  a setting the platform has no place for was not applied
```

Every message says what failed, on which endpoint or version, and what to do next. Adapters
translate provider exceptions into these at one boundary each; SDK exceptions never leak out.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "AlreadyExists",
    "Conflict",
    "DeploymentFailed",
    "EndpointKitError",
    "MissingDependency",
    "ModelError",
    "NotFound",
    "NotReady",
    "PayloadTooLarge",
    "PermissionDenied",
    "QuotaExceeded",
    "Retryable",
    "RolledBack",
    "SettingIgnoredWarning",
    "Throttled",
    "Timeout",
    "Unavailable",
    "UnknownBackend",
    "Unsupported",
    "ValidationError",
]


class EndpointKitError(Exception):
    """Root of every error endpointkit raises on purpose.

    `message` says what happened; `hint` says what to do next. The context attributes are
    filled where known: `backend` ("sagemaker"), `operation` ("deploy"), `endpoint`,
    `version`, and `provider_code` (the platform's own error code, e.g. "ValidationException").
    """

    default_hint: str = ""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        backend: str | None = None,
        operation: str | None = None,
        endpoint: str | None = None,
        version: str | None = None,
        provider_code: str | None = None,
    ) -> None:
        self.message = message
        self.hint = self.default_hint if hint is None else hint
        self.backend = backend
        self.operation = operation
        self.endpoint = endpoint
        self.version = version
        self.provider_code = provider_code
        super().__init__(message)

    def __str__(self) -> str:
        text = self.message
        if self.provider_code and self.provider_code not in text:
            text = f"{text} [{self.provider_code}]"
        if self.hint:
            text = f"{text} {self.hint}"
        return text

    def context(self) -> dict[str, Any]:
        """The error as a flat dict, for `--output json` and structured logs."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "hint": self.hint or None,
            "backend": self.backend,
            "operation": self.operation,
            "endpoint": self.endpoint,
            "version": self.version,
            "provider_code": self.provider_code,
        }

    def with_context(self, **context: str | None) -> EndpointKitError:
        """Fill context attributes that are still empty; returns self, for `raise`."""
        for key, value in context.items():
            if value is not None and getattr(self, key, None) is None:
                setattr(self, key, value)
        return self


class ValidationError(EndpointKitError, ValueError):
    """Bad spec or input, detected before any call to a provider."""


class UnknownBackend(ValidationError):
    """No backend is registered under the requested name."""


class PayloadTooLarge(ValidationError):
    """A request body is over the platform's limit; nothing was sent."""

    default_hint = "Send fewer instances per request, or use asynchronous or batch inference."


class MissingDependency(EndpointKitError, ImportError):
    """An optional extra is needed for this feature."""


class NotFound(EndpointKitError):
    """The endpoint or version does not exist."""


class AlreadyExists(EndpointKitError):
    """A create found the resource already there."""


class Conflict(EndpointKitError):
    """The resource is busy (an update is in progress) or in a state that forbids the call."""

    default_hint = "Wait for the endpoint to be InService ('endpointkit status NAME'), then retry."


class PermissionDenied(EndpointKitError):
    """The credentials in use lack a permission."""


class QuotaExceeded(EndpointKitError):
    """A quota or resource limit was hit; retrying will not help until it is raised."""


class Unsupported(EndpointKitError):
    """The backend does not offer this feature; nothing was changed."""


class Retryable(EndpointKitError):
    """A transient failure: the same call may succeed after a pause."""


class Throttled(Retryable):
    """The provider rate-limited the call."""

    default_hint = "Slow down or raise the limit; endpointkit already retried with backoff."


class Unavailable(Retryable):
    """A transient fault: the provider or a connection failed; nothing was confirmed."""


class NotReady(Retryable):
    """The endpoint or its model is still starting."""

    default_hint = "Wait until the endpoint is InService ('endpointkit status NAME')."


class Timeout(EndpointKitError):
    """A wait or a call ran out of time. `last_status` is the last status seen, if any."""

    def __init__(self, message: str, *, last_status: str | None = None, **kwargs: Any) -> None:
        self.last_status = last_status
        super().__init__(message, **kwargs)

    def context(self) -> dict[str, Any]:
        return {**super().context(), "last_status": self.last_status}


class ModelError(EndpointKitError):
    """The model server answered with an error; `status` and `body` are what it sent."""

    def __init__(
        self, message: str, *, status: int | None = None, body: bytes = b"", **kwargs: Any
    ) -> None:
        self.status = status
        self.body = body
        super().__init__(message, **kwargs)

    @property
    def body_excerpt(self) -> str:
        """The first 500 characters of the model's answer, decoded leniently."""
        return self.body[:500].decode("utf-8", "replace")

    def context(self) -> dict[str, Any]:
        return {**super().context(), "status": self.status, "body": self.body_excerpt}


class DeploymentFailed(EndpointKitError):
    """The platform failed a deployment; `reason` is its own words, `log_hint` where to look."""

    def __init__(
        self, message: str, *, reason: str = "", log_hint: str = "", **kwargs: Any
    ) -> None:
        self.reason = reason
        self.log_hint = log_hint
        super().__init__(message, **kwargs)

    def __str__(self) -> str:
        text = super().__str__()
        if self.log_hint and self.log_hint not in text:
            text = f"{text} Logs: {self.log_hint}"
        return text

    def context(self) -> dict[str, Any]:
        return {**super().context(), "reason": self.reason, "log_hint": self.log_hint or None}


class RolledBack(EndpointKitError):
    """A rollout gate failed; traffic was restored to what it was before the rollout."""

    def __init__(self, message: str, *, reason: str = "", **kwargs: Any) -> None:
        self.reason = reason
        super().__init__(message, **kwargs)

    def context(self) -> dict[str, Any]:
        return {**super().context(), "reason": self.reason}


class SettingIgnoredWarning(UserWarning):
    """A setting was asked for that the platform has no place for, so it is not applied
    (e.g. autoscaling cooldowns on Vertex AI, `max_replicas` without autoscaling on SageMaker).

    A warning, not an error: the change is valid without it. A UserWarning subclass rather
    than a log line, because it is about the caller's spec, which the caller can fix: it shows
    in notebooks and scripts by default (a log line needs logging configured), once per call
    site, and can be filtered by class or turned into an error (`-W error::...`).
    """


_PACKAGE = str(Path(__file__).resolve().parent)


def warn_setting_ignored(message: str) -> None:
    """Warn with a SettingIgnoredWarning that points at the caller's line: the first frame
    outside endpointkit, however deep inside it the setting was found."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    warnings.warn(message, SettingIgnoredWarning, stacklevel=level)
