"""Users' predictors, unchanged, through the real server process (see tests/serving/conftest.py).

Every platform behaviour asserted here cites its source: the SageMaker inference toolkit
(aws/sagemaker-inference-toolkit v1.10.1, ``src/sagemaker_inference/...``), Vertex AI's Custom
Prediction Routines (google-cloud-aiplatform ``google/cloud/aiplatform/prediction/...``), or a
platform document.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving.conftest import Server, free_port, start_server

__all__ = [
    "Server",
    "free_port",
    "load_error",
    "put_s3",
    "start_server",
    "wait_ready",
    "write",
]


def write(folder: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> dedented text) under ``folder``; return ``folder``."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return folder


@pytest.fixture
def s3_env() -> Iterator[dict[str, str]]:
    """moto's S3 on a loopback port, and the variables that point boto3 at it."""
    moto_server = pytest.importorskip("moto.server", reason="pip install 'moto[server]'")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}",
        }
    finally:
        server.stop()


def put_s3(env: dict[str, str], bucket: str, key: str, data: bytes) -> str:
    """Upload ``data`` to moto's S3; return its ``s3://`` URI."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL_S3"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def load_error(server: Server) -> str:
    """Wait for the model to fail loading; return the reason /ping gives."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        r = server.client.get("/ping")
        assert r.status_code == 503, f"the model loaded:\n{server.log()[-2000:]}"
        if r.json().get("code") == "model_load_failed":
            return str(r.json()["error"])
        time.sleep(0.05)
    raise AssertionError(f"the model never failed to load:\n{server.log()[-2000:]}")


def wait_ready(server: Server, path: str = "/ping", timeout_s: float = 180.0) -> None:
    """Wait for a slow load (google.cloud.aiplatform alone imports for 10-30 s here)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = server.client.get(path)
        if r.status_code == 200:
            return
        assert r.json().get("code") == "model_loading", r.text
        time.sleep(0.1)
    raise AssertionError(f"not ready:\n{server.log()[-2000:]}")
