"""The artifact bucket, and local model directories as reproducible model.tar.gz archives.

SageMaker downloads `ModelDataUrl` (an s3:// model.tar.gz) and unpacks it into /opt/ml/model.
A local directory is packed with sorted entries, zeroed timestamps and owners, so the same
files always give the same bytes and the same digest (and the upload can be skipped when the
object is already there). The bucket (`ArtifactBucket`) also holds asynchronous inputs and
each endpoint's history, under `<prefix>/<endpoint>/`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from endpointkit.adapters.sagemaker._errors import BACKEND
from endpointkit.errors import NotFound

if TYPE_CHECKING:
    from endpointkit.adapters.sagemaker._client import Aws

__all__ = ["ArtifactBucket", "pack_model", "split_s3_uri"]


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if info.isdir() else 0o644
    return info


def pack_model(path: Path) -> tuple[bytes, str]:
    """A gzip'd tar of the directory's contents (or of one file); returns (bytes, sha256)."""
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        data = path.read_bytes()
        return data, hashlib.sha256(data).hexdigest()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if path.is_file():
            tar.add(str(path), arcname=path.name, filter=_reset)
        else:
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for name in sorted(files):
                    if name.endswith(".pyc"):
                        continue
                    full = Path(root) / name
                    tar.add(str(full), arcname=str(full.relative_to(path)), filter=_reset)
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    data = compressed.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key)."""
    rest = uri.removeprefix("s3://")
    bucket, _, key = rest.partition("/")
    return bucket, key


class ArtifactBucket:
    """The S3 bucket endpointkit writes to: given, or `sagemaker-<region>-<account>` (created
    on first use, as the SageMaker SDK does)."""

    def __init__(self, aws: Aws, *, bucket: str | None, prefix: str) -> None:
        self._aws = aws
        self._setting = bucket
        self.prefix = prefix
        self._checked: str | None = None

    def key(self, endpoint: str, rest: str) -> str:
        """The object key of `rest` among `endpoint`'s files."""
        return f"{self.prefix}/{endpoint}/{rest}"

    def name(self) -> str:
        return self._setting or f"sagemaker-{self._aws.region}-{self._account()}"

    def _account(self) -> str:
        identity = self._aws.call("sts", "get_caller_identity", operation="connect")
        return str(identity["Account"])

    def get(self) -> str:
        """The bucket's name; the default bucket is created if it is not there yet."""
        bucket = self.existing()
        if bucket is not None:
            return bucket
        bucket = self.name()
        if self._setting:
            raise NotFound(
                f"artifact bucket {bucket!r} does not exist.",
                hint="Create it, or leave artifact_bucket unset to use "
                "sagemaker-<region>-<account>.",
                backend=BACKEND,
                operation="upload",
            )
        request: dict[str, Any] = {"Bucket": bucket}
        region = self._aws.region
        if region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": region}
        self._aws.call("s3", "create_bucket", operation="upload", **request)
        with self._aws.lock:
            self._checked = bucket
        return bucket

    def existing(self) -> str | None:
        """The bucket's name if it exists (nothing is created)."""
        with self._aws.lock:
            if self._checked is not None:
                return self._checked
        bucket = self.name()
        try:
            self._aws.call(
                "s3", "head_bucket", operation="upload", what=f"bucket {bucket!r}", Bucket=bucket
            )
        except NotFound:
            return None
        with self._aws.lock:
            self._checked = bucket
        return bucket

    def exists(self, uri: str) -> bool:
        bucket, key = split_s3_uri(uri)
        try:
            self._aws.call("s3", "head_object", operation="s3", what=uri, Bucket=bucket, Key=key)
        except NotFound:
            return False
        return True

    def read(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        response = self._aws.call(
            "s3", "get_object", operation="s3", what=uri, Bucket=bucket, Key=key
        )
        return bytes(response["Body"].read())

    def upload_model(self, endpoint: str, version: str, path: Path) -> str:
        """Pack `path` and upload it once (same content, same key); returns its s3:// URI."""
        data, sha = pack_model(path)
        bucket = self.get()
        key = self.key(endpoint, f"artifacts/{version}-{sha[:16]}/model.tar.gz")
        uri = f"s3://{bucket}/{key}"
        if not self.exists(uri):
            self._aws.call(
                "s3",
                "put_object",
                operation="upload",
                endpoint=endpoint,
                version=version,
                what=f"model artifact {uri}",
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType="application/x-gzip",
            )
        return uri

    def files(self, endpoint: str) -> list[str]:
        """The keys of the endpoint's model artifacts and asynchronous inputs."""
        bucket = self.existing()
        if bucket is None:
            return []
        keys: list[str] = []
        for prefix in (self.key(endpoint, "artifacts/"), self.key(endpoint, "async-")):
            for page in self._aws.pages(
                "s3",
                "list_objects_v2",
                operation="delete",
                token_in="ContinuationToken",
                token_out="NextContinuationToken",
                Bucket=bucket,
                Prefix=prefix,
            ):
                keys += [item["Key"] for item in page.get("Contents", [])]
        return keys

    def delete_files(self, endpoint: str) -> None:
        """Delete the endpoint's model artifacts and asynchronous inputs (its history stays)."""
        keys = self.files(endpoint)
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys a call
            self._aws.call(
                "s3",
                "delete_objects",
                operation="delete",
                Bucket=self.get(),
                Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True},
            )
