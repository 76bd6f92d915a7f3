"""s3:// model URIs: a SageMaker-style model.tar.gz fetched with boto3 from moto's S3 server."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from endpointkit.serving import load_predictor


@pytest.fixture
def s3_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server", reason="pip install 'moto[server]'")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": url,
        }.items():
            monkeypatch.setenv(key, value)
        yield url
    finally:
        server.stop()


def _put_model_tarball(s3_url: str) -> None:
    """s3://models/churn/v1/model.tar.gz: a toolkit script answering 7 per instance."""
    import boto3

    script = b"def model_fn(d):\n    return 7\ndef predict_fn(x, m):\n    return [m for _ in x]\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
    s3 = boto3.client("s3", endpoint_url=s3_url)
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="churn/v1/model.tar.gz", Body=buf.getvalue())


def test_s3_model_tarball_is_fetched_and_unpacked(s3_url: str, tmp_path: Path) -> None:
    _put_model_tarball(s3_url)
    predictor = load_predictor("s3://models/churn/v1")
    assert predictor.predict([1, 2]) == [7, 7]


def _model_folders(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("endpointkit-model-*"))


def test_a_served_s3_model_is_fetched_once_and_removed_when_the_server_exits(
    s3_url: str, tmp_path: Path
) -> None:
    """Each worker downloaded its own copy into a new temporary folder and none was ever
    removed (73 such folders had piled up in /tmp on the development machine): the server
    fetches once, before its workers start, and removes the copy when it exits."""
    from .conftest import start_server

    _put_model_tarball(s3_url)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": s3_url,
        "TMPDIR": str(scratch),
    }
    args = ["--model-dir", "s3://models/churn/v1", "--workers", "2"]
    with start_server(tmp_path, args, env) as server:
        answers = {server.client.post("/invocations", json=[1, 2]).json()[0] for _ in range(8)}
        assert answers == {7}
        assert len(_model_folders(scratch)) == 1  # one download for both workers
        assert server.proc.pid is not None
    assert _model_folders(scratch) == []  # removed at exit


def test_a_download_that_fails_midway_leaves_no_folder_behind(
    s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_url)
    s3.create_bucket(Bucket="models")
    # "a" downloads as a file, then "a/b" needs "a" to be a folder: the fetch fails there
    s3.put_object(Bucket="models", Key="broken/a", Body=b"1")
    s3.put_object(Bucket="models", Key="broken/a/b", Body=b"2")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises((NotADirectoryError, FileExistsError)):
        load_predictor("s3://models/broken")
    assert _model_folders(tmp_path) == []
