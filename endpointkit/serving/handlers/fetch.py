"""Download ``s3://`` and ``gs://`` artifacts; boto3 / google-cloud-storage imported only here."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path

from ..predictor import MissingExtraError, PredictorLoadError
from ..settings import ArchiveLimits


def _split(uri: str, scheme: str) -> tuple[str, str]:
    bucket, _, prefix = uri[len(scheme) :].partition("/")
    return bucket, prefix


class ArchiveTooLarge(PredictorLoadError):
    """The model archive would extract past a cap of ``ArchiveLimits``."""


def _maybe_extract(folder: Path, limits: ArchiveLimits) -> str:
    """A single ``model.tar.gz`` (SageMaker's ModelDataUrl format) is unpacked in place, within
    ``limits``; past a cap the download is removed and ArchiveTooLarge says which variable
    raises it."""
    archives = list(folder.glob("*.tar.gz"))
    if len(archives) == 1 and len(list(folder.iterdir())) == 1:
        try:
            _extract(archives[0], folder, limits)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        archives[0].unlink()
    return str(folder)


def _extract(archive: Path, folder: Path, limits: ArchiveLimits) -> None:
    """Stream the members out one by one, counting as they come: a gzip bomb stops at the cap
    instead of after it filled the disk (the archive is never listed whole first)."""
    total = files = 0
    root = folder.resolve()
    with tarfile.open(archive, mode="r|*") as tar:
        for member in tar:
            files += 1
            if member.isfile():
                total += member.size
            if files > limits.max_files:
                raise ArchiveTooLarge(
                    f"Model archive {archive.name} has more than {limits.max_files} files; "
                    f"raise ENDPOINTKIT_MAX_ARCHIVE_FILES if that is expected"
                )
            if total > limits.max_bytes:
                raise ArchiveTooLarge(
                    f"Model archive {archive.name} extracts to more than {limits.max_bytes} "
                    f"bytes; raise ENDPOINTKIT_MAX_ARCHIVE_BYTES if that is expected"
                )
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                tar.extract(member, folder, filter="data")
            else:  # pragma: no cover - old patch releases: refuse escaping paths ourselves
                target = (folder / member.name).resolve()
                if (root not in target.parents and target != root) or member.issym():
                    raise PredictorLoadError(f"Unsafe path in model archive: {member.name}")
                tar.extract(member, folder)


def fetch_s3(uri: str, limits: ArchiveLimits | None = None) -> str:
    """Copy every object under the ``s3://`` prefix into a new temporary directory."""
    try:
        import boto3
    except ImportError as exc:
        raise MissingExtraError(
            f"Fetching {uri} needs boto3: pip install 'endpointkit[sagemaker]'"
        ) from exc
    bucket, prefix = _split(uri, "s3://")
    target = Path(tempfile.mkdtemp(prefix="endpointkit-model-"))
    try:
        s3 = boto3.client("s3")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                rel = key[len(prefix) :].lstrip("/") or Path(key).name
                dest = target / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, key, str(dest))
    except BaseException:  # a failed or interrupted download leaves nothing behind
        shutil.rmtree(target, ignore_errors=True)
        raise
    return _maybe_extract(target, limits or ArchiveLimits())


def fetch_gcs(uri: str, limits: ArchiveLimits | None = None) -> str:
    """Copy every blob under the ``gs://`` prefix into a new temporary directory."""
    try:
        from google.cloud import storage  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        raise MissingExtraError(
            f"Fetching {uri} needs google-cloud-storage: pip install 'endpointkit[vertex]'"
        ) from exc
    bucket, prefix = _split(uri, "gs://")
    target = Path(tempfile.mkdtemp(prefix="endpointkit-model-"))
    try:
        client = storage.Client()
        for blob in client.list_blobs(bucket, prefix=prefix):
            if blob.name.endswith("/"):
                continue
            rel = blob.name[len(prefix) :].lstrip("/") or Path(blob.name).name
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            blob.download_to_filename(str(dest))
    except BaseException:  # a failed or interrupted download leaves nothing behind
        shutil.rmtree(target, ignore_errors=True)
        raise
    return _maybe_extract(target, limits or ArchiveLimits())


def fetch_code(uri: str, limits: ArchiveLimits | None = None) -> str:
    """A local folder holding ``SAGEMAKER_SUBMIT_DIRECTORY``: a folder as is; a
    ``sourcedir.tar.gz`` (local, ``file://``, ``s3://`` or ``gs://``) unpacked into a new
    temporary folder, within ``limits``."""
    limits = limits or ArchiveLimits()
    if uri.startswith("s3://"):
        return fetch_s3(uri, limits)
    if uri.startswith("gs://"):
        return fetch_gcs(uri, limits)
    path = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
    if path.is_dir():
        return str(path)
    if not path.is_file():
        raise PredictorLoadError(
            f"SAGEMAKER_SUBMIT_DIRECTORY {uri!r} does not exist; point it at the folder or the "
            f"sourcedir.tar.gz holding the inference script"
        )
    target = Path(tempfile.mkdtemp(prefix="endpointkit-code-"))
    try:
        _extract(path, target, limits)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return str(target)
