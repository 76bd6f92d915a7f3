"""Model artifacts from s3:// (moto's S3 server on loopback), and a missing-extra message."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from endpointkit import Endpoint, VersionSpec
from endpointkit.adapters.local import LocalBackend
from tests.conformance.suite import Versions

pytestmark = pytest.mark.slow  # real processes and sockets


@pytest.fixture
def s3_url() -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_s3_model_is_downloaded_then_served(
    s3_url: str,
    make_endpoint: Callable[..., Endpoint],
    versions: Versions,
    local: LocalBackend,
) -> None:
    import boto3

    credentials = {
        "AWS_ENDPOINT_URL": s3_url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    s3.create_bucket(Bucket="models")
    source = Path(versions.echo("remote").model or "")
    for item in source.iterdir():
        s3.upload_file(str(item), "models", f"echo/{item.name}")
    ep = make_endpoint(versions.echo("v1"))
    remote = VersionSpec(
        name="remote",
        model="s3://models/echo",
        predictor="echo_predictor:Echo",
        env=credentials,
    )
    ep.deploy(remote, traffic=0, timeout=60)
    assert ep.predict([[1.0]], version="remote").predictions == ["remote"]
