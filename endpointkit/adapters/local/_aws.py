"""AWS's shapes at the local gateway: SigV4 request signatures and SageMaker-runtime errors.

boto3 signs every request with Signature Version 4 and cannot send a bearer token, so a gateway
that requires its token (off loopback) also accepts a SigV4 signature made with the local
backend's own access key: one key id and secret per state folder, made once in a 0600 file
(`aws-credentials`, in the AWS shared-credentials format, profile `endpointkit-local`) and shown
by `endpointkit local credentials`. The gateway re-signs the request it received (method, path,
query, the signed headers, the body, the client's `X-Amz-Date`) with botocore's own signer and
compares the signatures in constant time; a date more than 15 minutes off is refused, as AWS
does. Failures answer the codes AWS answers: `MissingAuthenticationTokenException`,
`IncompleteSignatureException`, `UnrecognizedClientException`, `InvalidSignatureException`.

The gateway's own refusals on the SageMaker-runtime paths answer with the codes and HTTP
statuses of botocore's `sagemaker-runtime` service model, so boto3 raises its modeled
exceptions (`client.exceptions.ValidationError`, ...): an unknown endpoint or variant is a 400
`ValidationError` there, not a 404; a timeout is a `ModelError` (424) whose original status is 0,
as SageMaker answers a container that does not answer in time.
"""

from __future__ import annotations

import configparser
import hashlib
import hmac
import os
import secrets
import string
import time
from calendar import timegm
from pathlib import Path
from typing import NamedTuple

import orjson

from endpointkit.serving.types import Headers

__all__ = [
    "CREDENTIALS_FILE",
    "PROFILE",
    "AwsCredentials",
    "Denied",
    "error",
    "is_signed",
    "load_credentials",
    "runtime_error",
    "verify_sigv4",
]

CREDENTIALS_FILE = "aws-credentials"
PROFILE = "endpointkit-local"
SKEW_S = 15 * 60  # AWS refuses a signature whose date is further off than this
SCHEME = b"AWS4-HMAC-SHA256"
JSON = b"application/json"


class AwsCredentials(NamedTuple):
    access_key_id: str
    secret_access_key: str


class Denied(NamedTuple):
    """Why a SigV4 request is refused: AWS's HTTP status, error code and message."""

    status: int
    code: str
    message: str


def _new_credentials() -> AwsCredentials:
    upper = string.ascii_uppercase + string.digits
    key_id = "AKEK" + "".join(secrets.choice(upper) for _ in range(16))
    alphabet = string.ascii_letters + string.digits + "+/"
    return AwsCredentials(key_id, "".join(secrets.choice(alphabet) for _ in range(40)))


def load_credentials(home: Path, *, create: bool = True) -> AwsCredentials | None:
    """The state folder's access key, made once (mode 0600) when `create`; None if absent."""
    path = home / CREDENTIALS_FILE
    if not path.exists():
        if not create:
            return None
        made = _new_credentials()
        text = (
            f"# The endpointkit local gateway's AWS access key (SigV4), for boto3:\n"
            f"# AWS_SHARED_CREDENTIALS_FILE={path} and profile_name={PROFILE!r}.\n"
            f"[{PROFILE}]\naws_access_key_id = {made.access_key_id}\n"
            f"aws_secret_access_key = {made.secret_access_key}\n"
        )
        home.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # made meanwhile by another process: read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
    parser = configparser.ConfigParser()
    parser.read(path)
    section = parser[PROFILE]
    return AwsCredentials(section["aws_access_key_id"], section["aws_secret_access_key"])


def is_signed(headers: Headers) -> bool:
    """True if the request carries a SigV4 Authorization header."""
    for key, value in headers:
        if key == b"authorization":
            return value.startswith(SCHEME)
    return False


def _parse_authorization(value: str) -> dict[str, str] | None:
    fields: dict[str, str] = {}
    for part in value[len(SCHEME) :].split(","):
        key, sep, item = part.strip().partition("=")
        if not sep:
            return None
        fields[key] = item
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        return None
    return fields


def _epoch(stamp: str) -> float | None:
    try:
        return float(timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ")))
    except ValueError:
        return None


def verify_sigv4(
    credentials: AwsCredentials,
    method: str,
    path: str,
    query: bytes,
    headers: Headers,
    body: bytes,
    *,
    now: float | None = None,
) -> Denied | None:
    """None if the request's SigV4 signature is valid for `credentials`, else why not."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    received: dict[str, list[str]] = {}
    for key, value in headers:
        received.setdefault(key.decode("latin-1"), []).append(value.decode("latin-1"))
    fields = _parse_authorization(received.get("authorization", [""])[0])
    if fields is None:
        return Denied(
            400,
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.",
        )
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return Denied(400, "IncompleteSignatureException", "Malformed credential scope.")
    key_id, day, region, service, _ = scope
    if not hmac.compare_digest(key_id.encode(), credentials.access_key_id.encode()):
        return Denied(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid: the local gateway knows "
            "only its own access key ('endpointkit local credentials' shows it).",
        )
    stamp = (received.get("x-amz-date") or [""])[0]
    signed_at = _epoch(stamp)
    if signed_at is None or stamp[:8] != day:
        return Denied(400, "IncompleteSignatureException", "Missing or malformed X-Amz-Date.")
    clock = time.time() if now is None else now
    if abs(clock - signed_at) > SKEW_S:
        return Denied(
            403,
            "InvalidSignatureException",
            f"Signature expired: {stamp} is more than 15 minutes away from the gateway's "
            f"time ({time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(clock))}).",
        )
    digest = hashlib.sha256(body).hexdigest()
    claimed = received.get("x-amz-content-sha256")
    if claimed and claimed[0] not in (digest, "UNSIGNED-PAYLOAD"):
        return Denied(
            400,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    signed = fields["SignedHeaders"].split(";")
    request = AWSRequest(
        method=method,
        url=f"http://{(received.get('host') or ['localhost'])[0]}{path}"
        + (f"?{query.decode('latin-1')}" if query else ""),
        data=body,
    )
    for name in signed:
        for item in received.get(name, []):
            request.headers[name] = item  # HTTPHeaders: a repeated name adds a value
    request.context["timestamp"] = stamp
    signer = SigV4Auth(
        Credentials(credentials.access_key_id, credentials.secret_access_key), service, region
    )
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected.encode(), fields["Signature"].encode()):
        return Denied(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
    return None


#: The gateway's own HTTP statuses -> (status, code) as sagemaker-runtime answers them.
RUNTIME = {
    400: (400, "ValidationError"),
    401: (403, "MissingAuthenticationTokenException"),
    404: (400, "ValidationError"),
    405: (404, "UnknownOperationException"),
    413: (400, "ValidationError"),
    415: (400, "ValidationError"),
    422: (400, "ValidationError"),
    429: (429, "ThrottlingException"),
    500: (500, "InternalFailure"),
    502: (500, "InternalFailure"),
    503: (503, "ServiceUnavailable"),
}


def runtime_error(status: int, code: str, message: str) -> tuple[int, Headers, bytes]:
    """The gateway's refusal (`status`, and `code` when it is already an AWS code, as SigV4
    refusals are) in sagemaker-runtime's shape."""
    if code[:1].isupper():
        return error(status, code, message)
    if status == 504:
        payload = {
            "message": f'Received server error (0) with message "{message}"',
            "OriginalStatusCode": 0,
            "OriginalMessage": message,
        }
        headers: Headers = [(b"content-type", JSON), (b"x-amzn-errortype", b"ModelError")]
        return 424, headers, orjson.dumps(payload)
    found = RUNTIME.get(status) or ((500, "InternalFailure") if status >= 500 else None)
    aws_status, aws_code = found or (400, "ValidationError")
    return error(aws_status, aws_code, message)


def error(status: int, code: str, message: str) -> tuple[int, Headers, bytes]:
    """An AWS JSON error as botocore parses it: the code in `X-Amzn-ErrorType`, the message in
    the body."""
    headers: Headers = [(b"content-type", JSON), (b"x-amzn-errortype", code.encode())]
    return status, headers, orjson.dumps({"message": message})
