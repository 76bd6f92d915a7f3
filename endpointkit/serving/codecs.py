"""Content types in and out: JSON (orjson), CSV, npy and raw bytes, plus Accept negotiation."""

from __future__ import annotations

import functools
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


def numeric_array(instances: list[Any]) -> Any:
    """JSON instances as one numpy array when they are all numbers or booleans (or rows of
    them, equal in length); otherwise ``instances`` unchanged (strings, objects, ragged rows,
    nulls, an empty list)."""
    if not instances:
        return instances
    import numpy as np

    try:
        arr = np.asarray(instances)
    except (ValueError, TypeError, OverflowError):  # ragged rows
        return instances
    return arr if arr.dtype.kind in "biuf" else instances


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

    fast = _npy_fast(body)
    if fast is not None:
        return fast
    try:
        return np.load(io.BytesIO(body), allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/EOFError/OSError on bad input
        raise BadRequest(f"Malformed npy body: {exc}", code="malformed_npy") from None


_NPY_MAGIC = b"\x93NUMPY"
# Headers the fast path parses and caches (256 of them): numpy writes ~128 bytes; a hostile
# client's long distinct headers would otherwise pin up to 256 bodies' worth of memory.
_NPY_CACHED_HEADER_MAX = 1024


def _npy_fast(body: bytes) -> Any:
    """The array in a plain npy body (numeric dtype, data exactly as long as the header says)
    straight from the bytes: the header, parsed once per distinct header (requests of one
    client repeat it), then ``numpy.frombuffer`` and a copy (``np.load`` answers a writable
    array; so does this). None for anything else, which ``np.load`` decodes or rejects."""
    import numpy as np

    if body[:6] != _NPY_MAGIC or len(body) < 10:
        return None
    major = body[6]
    if major == 1:
        start = 10
        end = start + int.from_bytes(body[8:10], "little")
    elif major in (2, 3) and len(body) >= 12:
        start = 12
        end = start + int.from_bytes(body[8:12], "little")
    else:
        return None
    if end - start > _NPY_CACHED_HEADER_MAX:  # not a plain header: np.load decides
        return None
    parsed = _npy_header(bytes(body[start:end]))
    if parsed is None:
        return None
    dtype, fortran, shape, count = parsed
    if len(body) - end != count * dtype.itemsize:
        return None
    arr = np.frombuffer(body, dtype=dtype, count=count, offset=end).copy()
    if fortran:
        return arr.reshape(shape[::-1]).T
    return arr.reshape(shape)


@functools.lru_cache(maxsize=256)
def _npy_header(header: bytes) -> tuple[Any, bool, tuple[int, ...], int] | None:
    """(dtype, fortran_order, shape, element count) of a numeric npy header, else None."""
    import ast

    import numpy as np

    try:
        meta = ast.literal_eval(header.decode("latin-1"))
        dtype = np.dtype(meta["descr"])
        fortran = meta["fortran_order"]
        shape = tuple(meta["shape"])
    except Exception:  # np.load reports what is wrong
        return None
    if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
        return None
    if not isinstance(fortran, bool) or not all(type(d) is int and d >= 0 for d in shape):
        return None
    count = 1
    for d in shape:
        count *= d
    return dtype, fortran, shape, count


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
