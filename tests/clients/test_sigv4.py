"""The gateway's SigV4 check against botocore's own signer, without processes."""

from __future__ import annotations

import datetime
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from endpointkit.adapters.local import _aws

KEY = _aws.AwsCredentials("AKEKTESTTESTTESTTEST", "s3cret/s3cret+s3cret")


def signed(body: bytes = b"{}", *, secret: str = KEY.secret_access_key) -> AWSRequest:
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:8080/endpoints/my%20ep/invocations?a=1&b=%2F",
        data=body,
        headers={"Content-Type": "application/json", "X-Amzn-SageMaker-Target-Variant": "v2"},
    )
    SigV4Auth(Credentials(KEY.access_key_id, secret), "sagemaker", "eu-west-1").add_auth(request)
    return request


def check(request: AWSRequest, body: bytes | None = None, now: float | None = None) -> object:
    path, _, query = request.url.split("8080", 1)[1].partition("?")
    headers = [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    headers.append((b"host", b"127.0.0.1:8080"))
    return _aws.verify_sigv4(
        KEY, "POST", path, query.encode(), headers, request.body if body is None else body, now=now
    )


def test_botocore_signatures_verify() -> None:
    assert check(signed()) is None


def test_tampering_and_wrong_secrets_are_refused() -> None:
    assert check(signed(), body=b'{"x": 1}').code == "InvalidSignatureException"  # type: ignore[attr-defined]
    assert check(signed(secret="other")).code == "InvalidSignatureException"  # type: ignore[attr-defined]


def test_clock_skew_beyond_15_minutes_is_refused() -> None:
    stamp = datetime.datetime.now(datetime.timezone.utc).timestamp()
    assert check(signed(), now=stamp + 14 * 60) is None
    late = check(signed(), now=stamp + 16 * 60)
    assert late.code == "InvalidSignatureException"  # type: ignore[attr-defined]
    assert "expired" in late.message  # type: ignore[attr-defined]


def test_credentials_file_is_made_once_and_private(tmp_path: Path) -> None:
    assert _aws.load_credentials(tmp_path, create=False) is None
    made = _aws.load_credentials(tmp_path)
    assert made == _aws.load_credentials(tmp_path)
    assert (tmp_path / _aws.CREDENTIALS_FILE).stat().st_mode & 0o777 == 0o600
