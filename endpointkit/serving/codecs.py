"""Content types in and out: JSON (orjson), CSV, npy and raw bytes, plus Accept negotiation."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import orjson

from .errors import BadRequest, NotAcceptable, ServingError

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
OCTET = "application/octet-stream"
BUILTIN_TYPES: tuple[str, ...] = (JSON, CSV, NPY, OCTET)
_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def media_type(header: str | None) -> str:
    """``"Application/JSON; charset=utf-8"`` -> ``"application/json"``; empty -> ``""``."""
    if not header:
        return ""
    if header == JSON:  # the common case, without splitting
        return JSON
    return header.split(";", 1)[0].strip().lower()


def negotiate(accept: str | None, supported: Sequence[str], default: str) -> str:
    """Pick the response type for an Accept header (q-values honoured); raise NotAcceptable.

    A missing Accept or ``*/*`` gives ``default``; the first listed type wins among equal q.
    """
    if not accept:
        return default
    best: str | None = None
    best_q = 0.0
    for order, item in enumerate(accept.split(",")):
        parts = item.split(";")
        mtype = parts[0].strip().lower()
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0.0 or not mtype:
            continue
        if mtype == "*/*":
            candidate: str | None = default
        elif mtype.endswith("/*"):
            prefix = mtype[:-1]
            candidate = next((t for t in supported if t.startswith(prefix)), None)
        else:
            candidate = mtype if mtype in supported else None
        if candidate is not None and (q > best_q or best is None):
            best, best_q = candidate, q
        del order
    if best is None:
        raise NotAcceptable(
            f"None of the types in Accept {accept!r} can be produced; "
            f"supported: {', '.join(supported)}"
        )
    return best


def loads_json(body: bytes) -> Any:
    """Parse JSON or raise BadRequest naming the position."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Malformed JSON body: {exc}", code="malformed_json") from None


def _json_default(obj: Any) -> Any:
    tolist = getattr(obj, "tolist", None)
    if tolist is not None:  # numpy arrays of dtypes orjson skips (float16, object), scalars
        return tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps_json(obj: Any) -> bytes:
    """Serialize with orjson (numpy arrays natively); raise TypeError if impossible."""
    return orjson.dumps(obj, default=_json_default, option=_JSON_OPTS)


def _decode_csv(body: bytes) -> Any:
    import numpy as np

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("CSV body is not UTF-8", code="malformed_csv") from None
    rows = [line.split(",") for line in text.splitlines() if line.strip()]
    if not rows:
        raise BadRequest("Empty CSV body", code="malformed_csv")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise BadRequest(
            "Malformed CSV body: rows have different numbers of columns", code="malformed_csv"
        )
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError:
        return [[cell.strip() for cell in row] for row in rows]


def _decode_npy(body: bytes) -> Any:
    import numpy as np

    try:
        return np.load(io.BytesIO(body), allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/EOFError/OSError on bad input
        raise BadRequest(f"Malformed npy body: {exc}", code="malformed_npy") from None


def decode(body: bytes, content_type: str) -> Any:
    """Decode a body of a built-in ``content_type`` (already a bare media type)."""
    if content_type == JSON:
        return loads_json(body)
    if content_type == CSV:
        return _decode_csv(body)
    if content_type == NPY:
        return _decode_npy(body)
    return body  # application/octet-stream: the predictor gets the bytes


def _csv_cell(value: Any) -> str:
    text = str(value)
    if any(c in text for c in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def encode(obj: Any, content_type: str) -> bytes:
    """Encode predictions as ``content_type``; raise ServingError (500) if they cannot be."""
    if content_type == JSON:
        return dumps_json(obj)
    if content_type == CSV:
        if hasattr(obj, "tolist"):
            obj = obj.tolist()
        if isinstance(obj, dict) and "predictions" in obj:
            obj = obj["predictions"]
        if not isinstance(obj, list):
            obj = [obj]
        lines = [
            ",".join(_csv_cell(v) for v in row)
            if isinstance(row, (list, tuple))
            else _csv_cell(row)
            for row in obj
        ]
        return ("\n".join(lines) + "\n").encode()
    if content_type == NPY:
        import numpy as np

        buf = io.BytesIO()
        np.save(buf, np.asarray(obj), allow_pickle=False)
        return buf.getvalue()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    if isinstance(obj, str):
        return obj.encode()
    raise ServingError(
        f"The predictor returned {type(obj).__name__}, which cannot be sent as {content_type}",
        code="encode_error",
    )
