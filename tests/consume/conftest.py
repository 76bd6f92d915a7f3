"""moto's server (SQS and S3) on 127.0.0.1 for the queue consumer's tests, a fresh queue and
bucket per test, and a mock endpoint that echoes its instances."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from endpointkit.adapters.mock import MockBackend
from endpointkit.adapters.registry import override_backends

REGION = "us-east-1"
_names = itertools.count()


@dataclass
class Aws:
    url: str

    @property
    def env(self) -> dict[str, str]:
        """What a child process needs to reach the same server."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield Aws(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def sqs(aws: Aws) -> Any:
    return aws.client("sqs")


@pytest.fixture
def s3(aws: Aws) -> Any:
    return aws.client("s3")


@pytest.fixture
def queue(sqs: Any) -> tuple[str, str]:
    """A fresh queue: (name, url)."""
    name = f"requests-{next(_names)}"
    return name, sqs.create_queue(QueueName=name)["QueueUrl"]


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"results-{next(_names)}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def mock() -> Iterator[MockBackend]:
    """Endpoint 'echo' answers each instance with itself; every backend name resolves here."""
    backend = MockBackend()
    backend.add_endpoint("echo", {"v1": lambda rows: list(rows)})
    with override_backends(backend):
        yield backend
