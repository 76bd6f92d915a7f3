"""Local model directories -> reproducible model.tar.gz archives for SageMaker.

SageMaker downloads `ModelDataUrl` (an s3:// model.tar.gz) and unpacks it into /opt/ml/model.
A local directory is packed with sorted entries, zeroed timestamps and owners, so the same
files always give the same bytes and the same digest (and the upload can be skipped when the
object is already there).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

__all__ = ["pack_model", "split_s3_uri"]


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
