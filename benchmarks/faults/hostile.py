"""Generated hostile requests against a real server process, per contract (hypothesis).

Each example is raw bytes on a new connection: the contract's routes and others, arbitrary
bytes, malformed JSON, wrong types, deep nesting and large bodies (some past the limits), bad
content types, odd and oversized headers, chunked framing right and broken, conflicting
lengths, pipelined requests. Hypothesis generates the examples first (no I/O in the loop);
they are then sent 64 at a time. A failure is an answer >= 500 other than 503/504 (those are
the server's intended back-pressure), or the process dying; each failure's bytes are saved.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from ._proc import exchange

CONTRACTS: dict[str, dict[str, Any]] = {
    "sagemaker": {"predict": "/invocations", "other": ["/ping", "/execution-parameters"]},
    "vertex": {"predict": "/predict", "other": ["/health"]},
    "oip": {
        "predict": "/v2/models/model/infer",
        "other": ["/v2/health/ready", "/v2/health/live", "/v2/models/model", "/v2/models/x/infer"],
    },
}
CTYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=utf-16",
    "text/csv",
    "application/jsonlines",
    "application/x-npy",
    "application/octet-stream",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    ";;;",
    "application/json; =",
]
DATATYPES = ["FP32", "FP64", "INT8", "INT64", "UINT8", "BOOL", "BYTES", "FP16", "XX", ""]
TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
RESERVED = {"content-length", "transfer-encoding", "host", "connection", "expect", "upgrade"}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
rows = st.lists(st.lists(scalars, min_size=0, max_size=6), max_size=4)


@st.composite
def body(draw: st.DrawFn, contract: str) -> bytes:
    kind = draw(
        st.sampled_from(
            ["shape"] * 9
            + ["value"] * 3
            + ["bytes", "bytes", "broken-json", "broken-json"]
            + ["deep", "csv", "csv"]
            + (["large"] if draw(st.integers(0, 9)) == 0 else [])
        )
    )
    if kind == "bytes":
        return draw(st.binary(max_size=2048))
    if kind == "deep":
        depth = draw(st.integers(min_value=1, max_value=5000))
        opener, closer = draw(
            st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"instances":[', "]}")])
        )
        return (opener * depth + "1" + closer * depth).encode()
    if kind == "large":
        # up to past the 6 MB (SageMaker, OIP) and 1.5 MB (Vertex) limits: 413 expected there
        count = draw(st.sampled_from([10_000, 200_000, 800_000, 3_100_000]))
        return b'{"instances": [[' + b"1," * (count - 1) + b"1]]}"
    if kind == "csv":
        return "\n".join(
            ",".join(draw(st.lists(st.text(max_size=6), max_size=5)))
            for _ in range(draw(st.integers(0, 4)))
        ).encode("utf-8", "surrogatepass")
    if kind == "value":
        payload: Any = draw(values)
    elif contract == "oip":
        tensor = {
            "name": draw(st.text(max_size=6)),
            "shape": draw(st.lists(st.integers(min_value=-3, max_value=2**40), max_size=4)),
            "datatype": draw(st.sampled_from(DATATYPES)),
            "data": draw(values | rows),
        }
        if draw(st.booleans()):
            tensor["parameters"] = draw(values)
        payload = {"inputs": draw(st.lists(st.just(tensor) | values, max_size=3))}
        if draw(st.booleans()):
            payload["outputs"] = draw(values)
    elif contract == "vertex" or draw(st.booleans()):
        payload = {"instances": draw(rows | values)}
        if draw(st.booleans()):
            payload["parameters"] = draw(values)
    else:
        payload = draw(rows | values)
    text = json.dumps(payload, allow_nan=True)
    if kind == "broken-json" or draw(st.integers(0, 9)) == 0:
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=3)) + text[cut + draw(st.integers(0, 3)) :]
    return text.encode("utf-8", "surrogatepass")


@st.composite
def one_request(draw: st.DrawFn, contract: str) -> tuple[bytes, bool]:
    """(raw request, whether it is complete: the server owes it an answer)."""
    routes = CONTRACTS[contract]
    method = draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "OPTIONS", "PATCH", "X"]))
    path = draw(st.sampled_from([routes["predict"]] * 6 + routes["other"] + ["/", "/nope"]))
    if draw(st.integers(0, 5)) == 0:
        path += "?" + draw(st.text(alphabet="abc=&%20;", max_size=20))
    if draw(st.integers(0, 20)) == 0:
        path = "/" + "a" * draw(st.integers(100, 20_000))
    data = draw(body(contract))
    headers: list[tuple[str, str]] = [("host", "x")]
    if draw(st.integers(0, 4)):
        headers.append(
            (
                "content-type",
                draw(st.sampled_from(CTYPES) | st.text(alphabet=TOKEN + "/;= ", max_size=30)),
            )
        )
    if draw(st.booleans()):
        headers.append(
            ("accept", draw(st.sampled_from([*CTYPES, "*/*", "application/*", "x/y;q=abc"])))
        )
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.text(alphabet=TOKEN, min_size=1, max_size=20))
        if name.lower() not in RESERVED:
            headers.append(
                (name, draw(st.text(alphabet=TOKEN + ' \t"(),/:;<=>?@[]{}', max_size=40)))
            )
    if draw(st.integers(0, 30)) == 0:  # many headers (past the count limit sometimes)
        headers += [(f"x-h{i}", "v") for i in range(draw(st.integers(50, 150)))]
    if draw(st.integers(0, 30)) == 0:  # one huge header (past the size limit sometimes)
        headers.append(("x-big", "v" * draw(st.integers(1_000, 80_000))))
    if draw(st.integers(0, 20)) == 0:
        headers.append(
            (
                "x-amzn-sagemaker-custom-attributes",
                draw(st.text(max_size=50)).encode("utf-8", "replace").decode("latin-1"),
            )
        )
    framing = draw(
        st.sampled_from(
            ["length"] * 8
            + ["chunked", "chunked-broken", "both", "two-lengths", "bad-length", "short", "none"]
        )
    )
    complete = True
    if framing == "length":
        head = [("content-length", str(len(data)))]
        payload = data
    elif framing == "chunked" or framing == "both":
        size = draw(st.integers(1, 4096))
        parts = [data[i : i + size] for i in range(0, len(data), size)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        head = [("transfer-encoding", "chunked")]
        if framing == "both":
            head.append(("content-length", str(draw(st.integers(0, len(payload) + 10)))))
    elif framing == "chunked-broken":
        bad = draw(
            st.sampled_from(
                [
                    b"zz\r\n",
                    b"-1\r\n",
                    b"ffffffffffffffffff\r\n",
                    b"5\r\nab\r\n0\r\n\r\n",
                    b"3;\x00\r\nabc\r\n0\r\n\r\n",
                    b"0\r\n",
                ]
            )
        )
        payload = bad + data[:64]
        head = [
            (
                "transfer-encoding",
                draw(st.sampled_from(["chunked", "chunked, gzip", "gzip", "xchunked"])),
            )
        ]
        complete = False  # may be waiting for more framing: an answer is not owed
    elif framing == "two-lengths":
        head = [("content-length", str(len(data))), ("content-length", str(len(data) + 1))]
        payload = data
        complete = False
    elif framing == "bad-length":
        head = [
            (
                "content-length",
                draw(st.sampled_from(["-1", "abc", "1e3", " 5", "99999999999999999999", "0x10"])),
            )
        ]
        payload = data
    elif framing == "short":
        head = [("content-length", str(len(data) + draw(st.integers(1, 100))))]
        payload = data
        complete = False
    else:  # no length at all: a body-less request followed by garbage
        head = []
        payload = data
        complete = False
    version = draw(st.sampled_from(["HTTP/1.1"] * 10 + ["HTTP/1.0", "HTTP/2.0", "HTTP/1.1x"]))
    if version != "HTTP/1.1":
        complete = False
    lines = [f"{method} {path} {version}"] + [f"{k}: {v}" for k, v in headers + head]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + payload
    return raw, complete


@st.composite
def request(draw: st.DrawFn, contract: str) -> tuple[bytes, int, bool]:
    """(raw bytes, answers owed, complete); sometimes 2-3 pipelined requests."""
    first, complete = draw(one_request(contract))
    if not complete or draw(st.integers(0, 9)):
        return first, 1, complete
    more = [draw(one_request(contract)) for _ in range(draw(st.integers(1, 2)))]
    raw = first + b"".join(r for r, _ in more)
    return raw, 1 + len(more), all(c for _, c in more)


def generate(contract: str, n: int, rng_seed: int) -> list[tuple[bytes, int, bool]]:
    out: list[tuple[bytes, int, bool]] = []

    @seed(rng_seed)
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(request(contract))
    def collect(example: tuple[bytes, int, bool]) -> None:
        out.append(example)

    collect()
    return out


async def send_all(
    port: int, examples: list[tuple[bytes, int, bool]], concurrency: int = 64, timeout: float = 3.0
) -> dict[str, Any]:
    statuses: dict[int, int] = {}
    ends: dict[str, int] = {}
    failures: list[dict[str, Any]] = []
    unanswered_complete = 0
    queue = list(enumerate(examples))
    queue.reverse()

    async def worker() -> None:
        nonlocal unanswered_complete
        while queue:
            index, (raw, expected, complete) = queue.pop()
            # an incomplete request is owed no answer: a rejection comes at once, if at all
            answers, end = await exchange(port, raw, expected, timeout if complete else 0.3)
            ends[end] = ends.get(end, 0) + 1
            if complete and end == "timeout" and not answers:
                unanswered_complete += 1
            for status, headers, answer in answers:
                statuses[status] = statuses.get(status, 0) + 1
                if status >= 500 and status not in (503, 504):
                    failures.append(
                        {
                            "index": index,
                            "status": status,
                            "answer": answer[:300].decode("utf-8", "replace"),
                            "raw": raw,
                        }
                    )
                if status in (503, 504) and b"retry-after" not in headers and status == 503:
                    failures.append(
                        {
                            "index": index,
                            "status": status,
                            "answer": "503 without Retry-After",
                            "raw": raw,
                        }
                    )

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {
        "statuses": dict(sorted(statuses.items())),
        "ends": ends,
        "failures": failures,
        "unanswered_complete": unanswered_complete,
    }
