"""Request bodies, answer decoding and wrk's answer checks for each input mode, plus the
ratios against the goals. Pure Python and numpy (no torch, no server): unit-tested.

Modes: ``json`` (``/invocations``, ``{"instances": [[ids]]}``), ``npy`` (``/invocations``,
``application/x-npy`` in and out) and ``oip`` (``/v2/models/model/infer`` with Triton's binary
tensor extension in and out).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

MODES = ("json", "npy", "oip")
BINARY = ("npy", "oip")
GOALS = {"json": 0.8, "binary": 0.9}  # served-batched rate / predictor batch-64 rate


@dataclass(frozen=True)
class Request:
    """One request: path, headers and body."""

    path: str
    headers: dict[str, str]
    body: bytes


def request(mode: str, rows: Any) -> Request:
    """The request carrying ``rows`` ((n, tokens) integer token ids) in ``mode``."""
    import numpy as np

    ids = np.asarray(rows)
    if ids.ndim != 2:
        raise ValueError(f"rows must be 2-D (n, tokens), got shape {ids.shape}")
    if mode == "json":
        body = json.dumps({"instances": ids.astype(int).tolist()}, separators=(",", ":"))
        return Request("/invocations", {"Content-Type": "application/json"}, body.encode())
    data = np.ascontiguousarray(ids, dtype=np.float32)
    if mode == "npy":
        buf = io.BytesIO()
        np.save(buf, data, allow_pickle=False)
        headers = {"Content-Type": "application/x-npy", "Accept": "application/x-npy"}
        return Request("/invocations", headers, buf.getvalue())
    if mode == "oip":
        raw = data.tobytes()
        tensor = {
            "name": "input-0",
            "shape": list(data.shape),
            "datatype": "FP32",
            "parameters": {"binary_data_size": len(raw)},
        }
        head = json.dumps(
            {"id": "1", "inputs": [tensor], "parameters": {"binary_data_output": True}},
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(len(head)),
        }
        return Request("/v2/models/model/infer", headers, head + raw)
    raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")


def decode(mode: str, body: bytes, headers: dict[str, str]) -> Any:
    """An answer's outputs as a float32 (n, d) array; ValueError if it is not one."""
    import numpy as np

    if mode == "json":
        doc = json.loads(body)
        if not isinstance(doc, dict) or "predictions" not in doc:
            raise ValueError(f"no 'predictions' in the answer: {body[:200]!r}")
        out = np.asarray(doc["predictions"], dtype=np.float32)
    elif mode == "npy":
        out = np.load(io.BytesIO(body), allow_pickle=False)
    elif mode == "oip":
        lower = {k.lower(): v for k, v in headers.items()}
        n = int(lower.get("inference-header-content-length", len(body)))
        head = json.loads(body[:n])
        tensor = head["outputs"][0]
        size = tensor.get("parameters", {}).get("binary_data_size")
        if size is None:
            out = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        else:
            if tensor["datatype"] != "FP32" or n + size != len(body):
                raise ValueError(f"unexpected binary output tensor {tensor!r} ({len(body)} bytes)")
            out = np.frombuffer(body[n:], dtype=np.float32).reshape(tensor["shape"])
    else:
        raise ValueError(f"unknown mode {mode!r}")
    if out.ndim != 2:
        raise ValueError(f"expected a (n, d) answer, got shape {out.shape}")
    return out


def lua_check(mode: str, width: int) -> str:
    """wrk's per-answer check (a Lua expression over ``status``, ``body``, ``expected``).

    fp16 answers may differ in their last bits between batches, so the bytes are not compared:
    JSON answers must be one row of ``width`` numbers (``width - 1`` commas inside
    ``{"predictions":[[...]]}``); binary answers must have the sampled answer's length (the
    npy header and OIP JSON head carry the shape, the payload is width float32s)."""
    if mode == "json":
        return (
            'status == 200 and body:sub(1, 17) == "{\\"predictions\\":[[" '
            'and body:sub(-3) == "]]}" and select(2, body:gsub(",", ",")) == '
            f"{width - 1}"
        )
    return "status == 200 and #body == #expected and body:sub(1, 6) == expected:sub(1, 6)"


def ratios(predictor_b64: float, served: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each batched served row's rate over the predictor's batch-64 rate, against its goal."""
    out = []
    for row in served:
        if not row.get("batched") or row.get("rps") is None:
            continue
        kind = "json" if row["mode"] == "json" else "binary"
        ratio = row["rps"] / predictor_b64 if predictor_b64 > 0 else float("nan")
        goal = GOALS[kind]
        out.append(
            {
                "mode": row["mode"],
                "workers": row["workers"],
                "rps": row["rps"],
                "ratio": ratio,
                "goal": goal,
                "met": ratio >= goal,
            }
        )
    return out
