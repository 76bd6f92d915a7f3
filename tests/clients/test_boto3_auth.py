"""boto3 against a gateway that requires its token: boto3 signs with SigV4 and cannot send a
bearer token, so the gateway verifies signatures made with the local backend's access key
(`endpointkit local credentials`); Google clients keep the bearer token."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from endpointkit.adapters.local.commands import main as local_main
from tests.clients.conftest import endpoint_path, prediction_client
from tests.conformance.suite import Versions
from tests.local.harness import local_backend

pytestmark = pytest.mark.slow  # real processes and sockets

BODY = b'{"instances": [[5.1, 3.5]]}'
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalBackend, Path]]:
    home = tmp_path_factory.mktemp("guarded-home")
    versions = Versions(home / "models")
    with local_backend(home, token="s3cret-token") as local:
        ep = Endpoint.create("guarded", versions.echo("v1"), backend=local, timeout=60)
        yield local, home
        ep.delete()


def keys(home: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert local_main(["credentials", "--home", str(home), "--output", "json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_boto3_signs_with_the_local_access_key(
    guarded: tuple[LocalBackend, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    local, home = guarded
    found = keys(home, capsys)
    assert stat.S_IMODE(os.stat(found["file"]).st_mode) == 0o600
    assert keys(home, capsys) == found  # made once
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=local.gateway_url(),
        region_name="us-east-1",
        aws_access_key_id=found["aws_access_key_id"],
        aws_secret_access_key=found["aws_secret_access_key"],
        config=NO_RETRY,
    )
    answer = client.invoke_endpoint(
        EndpointName="guarded", Body=BODY, ContentType="application/json"
    )
    assert answer["Body"].read() == b'{"predictions":["v1"]}'


def test_boto3_named_profile_from_the_credentials_file(
    guarded: tuple[LocalBackend, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local, home = guarded
    found = keys(home, capsys)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", found["file"])
    session = boto3.Session(profile_name=found["profile"], region_name="eu-west-1")
    client = session.client("sagemaker-runtime", endpoint_url=local.gateway_url())
    answer = client.invoke_endpoint(
        EndpointName="guarded", Body=BODY, ContentType="application/json"
    )
    assert answer["InvokedProductionVariant"] == "v1"


def test_boto3_wrong_keys_get_aws_codes(
    guarded: tuple[LocalBackend, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    local, home = guarded
    found = keys(home, capsys)
    cases = {
        "InvalidSignatureException": (found["aws_access_key_id"], "not-the-secret"),
        "UnrecognizedClientException": ("AKIAIOSFODNN7EXAMPLE", found["aws_secret_access_key"]),
    }
    for code, (key_id, secret) in cases.items():
        client = boto3.client(
            "sagemaker-runtime",
            endpoint_url=local.gateway_url(),
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=NO_RETRY,
        )
        with pytest.raises(ClientError) as caught:
            client.invoke_endpoint(EndpointName="guarded", Body=BODY)
        assert caught.value.response["Error"]["Code"] == code
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_google_clients_keep_the_bearer_token(guarded: tuple[LocalBackend, Path]) -> None:
    from google.auth.exceptions import RefreshError
    from google.oauth2.credentials import Credentials

    local, _ = guarded
    client = prediction_client(local.gateway_url(), Credentials(token="s3cret-token"))
    answer = client.predict(endpoint=endpoint_path("guarded"), instances=[[1.0]])
    assert list(answer.predictions) == ["v1"]
    outsider = prediction_client(local.gateway_url(), Credentials(token="wrong"))
    # As against Google: a 401 makes google-auth refresh the token, which a bare token cannot.
    with pytest.raises(RefreshError):
        outsider.predict(endpoint=endpoint_path("guarded"), instances=[[1.0]])
