"""Errors the server answers with: one HTTP status and one stable code each.

Every failure becomes ``ServingError`` before it reaches the wire; contracts render it as JSON
``{"error": message, "code": code, "request_id": id}`` (OIP clients read ``error``).
"""

from __future__ import annotations


class ServingError(Exception):
    """A request failed; ``status`` and ``code`` go to the client, the message too.

    ``logged``: the message is generic and the detail, the ``__cause__``, goes to the log
    only; the client is told to quote its request id."""

    status: int = 500
    code: str = "internal_error"
    logged: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.headers = headers or []

    def client_message(self, request_id: str) -> str:
        """The message for the client (a ``logged`` one points at the log)."""
        if self.logged:
            return f"{self.message}; the server log has the details under request id {request_id}"
        return self.message


class BadRequest(ServingError):
    """Malformed body (JSON, CSV, npy) or a request the contract cannot parse: 400."""

    status = 400
    code = "bad_request"


class NotFound(ServingError):
    """No such route or model: 404."""

    status = 404
    code = "not_found"


class MethodNotAllowed(ServingError):
    """Known route, wrong method: 405."""

    status = 405
    code = "method_not_allowed"


class NotAcceptable(ServingError):
    """No response content type satisfies Accept: 406."""

    status = 406
    code = "not_acceptable"


class PayloadTooLarge(ServingError):
    """Body over the route's limit, rejected before it is fully read: 413."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServingError):
    """Request Content-Type that neither the server nor the predictor decodes: 415."""

    status = 415
    code = "unsupported_media_type"


class InvalidInput(ServingError):
    """Input failed the predictor's schema or the predictor rejected it (ValueError): 422."""

    status = 422
    code = "invalid_input"


class PredictorFailed(ServingError):
    """The predictor raised; the traceback is logged, never sent: 500."""

    status = 500
    code = "predictor_error"


class NotReady(ServingError):
    """The model is not loaded (yet, or it failed to load): 503."""

    status = 503
    code = "not_ready"


class Overloaded(ServingError):
    """The in-flight limit is reached: 503 with Retry-After."""

    status = 503
    code = "overloaded"


class RequestTimeout(ServingError):
    """The predictor did not answer within the per-request timeout: 504."""

    status = 504
    code = "timeout"
