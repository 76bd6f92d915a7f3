"""Download ``s3://`` and ``gs://`` artifacts; boto3 / google-cloud-storage imported only here."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

from ..predictor import MissingExtraError


def _split(uri: str, scheme: str) -> tuple[str, str]:
    bucket, _, prefix = uri[len(scheme) :].partition("/")
    return bucket, prefix


def _maybe_extract(folder: Path) -> str:
    """A single ``model.tar.gz`` (SageMaker's ModelDataUrl format) is unpacked in place."""
    archives = list(folder.glob("*.tar.gz"))
    if len(archives) == 1 and len(list(folder.iterdir())) == 1:
        with tarfile.open(archives[0]) as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                tar.extractall(folder, filter="data")
            else:  # pragma: no cover - old patch releases: refuse escaping paths ourselves
                root = folder.resolve()
                for member in tar.getmembers():
                    target = (folder / member.name).resolve()
                    if (root not in target.parents and target != root) or member.issym():
                        raise ValueError(f"Unsafe path in model archive: {member.name}")
                tar.extractall(folder)
        archives[0].unlink()
    return str(folder)


def fetch_s3(uri: str) -> str:
    """Copy every object under the ``s3://`` prefix into a new temporary directory."""
    try:
        import boto3
    except ImportError as exc:
        raise MissingExtraError(
            f"Fetching {uri} needs boto3: pip install 'endpointkit[sagemaker]'"
        ) from exc
    bucket, prefix = _split(uri, "s3://")
    target = Path(tempfile.mkdtemp(prefix="endpointkit-model-"))
    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            rel = key[len(prefix) :].lstrip("/") or Path(key).name
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(dest))
    return _maybe_extract(target)


def fetch_gcs(uri: str) -> str:
    """Copy every blob under the ``gs://`` prefix into a new temporary directory."""
    try:
        from google.cloud import storage  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        raise MissingExtraError(
            f"Fetching {uri} needs google-cloud-storage: pip install 'endpointkit[vertex]'"
        ) from exc
    bucket, prefix = _split(uri, "gs://")
    target = Path(tempfile.mkdtemp(prefix="endpointkit-model-"))
    client = storage.Client()
    for blob in client.list_blobs(bucket, prefix=prefix):
        if blob.name.endswith("/"):
            continue
        rel = blob.name[len(prefix) :].lstrip("/") or Path(blob.name).name
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(dest))
    return _maybe_extract(target)
