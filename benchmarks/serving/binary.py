"""Microseconds per request for a 128-token input (1 x 128 int64) by encoding: JSON and npy on
``/invocations``, OIP v2 JSON and OIP's binary tensor extension over HTTP, and OIP over gRPC
with ``raw_input_contents``.

``python -m benchmarks.serving.binary [--before DIR]`` drives the whole app in process (uvloop,
no sockets, so the figure is the server's own work: routing, decoding, predict, encoding) with
an inline row-sum predictor (``models:TokenSum``) and reports server CPU time per request
(``time.process_time``), the worst of the repeats. gRPC: the request message parsed from its
bytes, :func:`oip_grpc.model_infer`, the answer serialized (what the gRPC servicer adds to the
transport). ``--before DIR`` runs the same cases in a subprocess that imports endpointkit from
DIR first (e.g. ``git archive main endpointkit | tar -x -C DIR``) and reports both, side by side,
in benchmarks/results/binary.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

RESULTS = Path(__file__).resolve().parents[1] / "results"
TOKENS = np.arange(1000, 1128, dtype=np.int64).reshape(1, 128)
EXPECTED = int(TOKENS.sum())


def _bodies() -> dict[str, tuple[str, list[tuple[bytes, bytes]], bytes]]:
    """case -> (path, headers, body)."""
    npy = io.BytesIO()
    np.save(npy, TOKENS)
    tensor = {"name": "input-0", "datatype": "INT64", "shape": [1, 128]}
    oip_json = orjson.dumps({"inputs": [{**tensor, "data": TOKENS.reshape(-1).tolist()}]})
    raw = TOKENS.tobytes()
    head = orjson.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}]})
    infer = "/v2/models/model/infer"
    json_type = (b"content-type", b"application/json")
    return {
        "JSON /invocations": (
            "/invocations",
            [json_type],
            orjson.dumps({"instances": TOKENS.tolist()}),
        ),
        "npy /invocations": (
            "/invocations",
            [(b"content-type", b"application/x-npy")],
            npy.getvalue(),
        ),
        "OIP JSON (HTTP)": (infer, [json_type], oip_json),
        "OIP binary (HTTP)": (
            infer,
            [
                (b"content-type", b"application/octet-stream"),
                (b"inference-header-content-length", b"%d" % len(head)),
            ],
            head + raw,
        ),
    }


async def _measure(requests: int, repeats: int) -> dict[str, float]:
    from endpointkit.serving.app import ServingApp
    from endpointkit.serving.settings import Settings

    sys.path.insert(0, str(Path(__file__).parent))
    from models import TokenSum, TokenSumArrays

    app = ServingApp(Settings(request_log="off"), predictor=TokenSum())
    out: dict[str, float] = {}
    for name, (path, headers, body) in _bodies().items():
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "headers": [*headers, (b"content-length", b"%d" % len(body))],
        }
        answers: list[bytes] = []
        statuses: list[int] = []

        async def receive(body: bytes = body) -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(
            message: Any, statuses: list[int] = statuses, answers: list[bytes] = answers
        ) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            else:
                answers.append(message["body"])

        async def one(scope: dict[str, Any] = scope) -> None:
            await app(dict(scope), receive, send)

        out[name] = await _timed(one, requests, repeats)
        assert set(statuses) == {200}, (name, statuses[:3], answers[:1])
        assert _answer_sum(answers[-1]) == EXPECTED, (name, answers[-1][:300])
    out["OIP gRPC raw_input_contents"] = await _timed(_grpc_call(app), requests, repeats)
    app.runtime.close()
    # the same JSON body to a predictor with ``array_input`` (a list before that existed)
    arrays = ServingApp(Settings(request_log="off"), predictor=TokenSumArrays())
    path, headers, body = _bodies()["JSON /invocations"]
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}

    async def json_arrays() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.body":
                assert _answer_sum(message["body"]) == EXPECTED

        await arrays(dict(scope), receive, send)

    out["JSON /invocations, array_input predictor"] = await _timed(json_arrays, requests, repeats)
    arrays.runtime.close()
    return out


def _answer_sum(answer: bytes) -> int:
    """The one prediction in an answer: v1 JSON, v2 JSON, or v2 binary."""
    if answer.startswith(b"{") and b'"outputs"' not in answer:
        doc = orjson.loads(answer)
        return int(doc["predictions"][0] if isinstance(doc, dict) else doc[0])
    if answer.startswith(b"["):
        return int(orjson.loads(answer)[0])
    if answer[:1] == b"{":
        end = answer.rfind(b"}") + 1
        doc = orjson.loads(answer[:end])
        tensor = doc["outputs"][0]
        if "data" in tensor:
            return int(tensor["data"][0])
    return int(np.frombuffer(answer[-8:], dtype=np.int64)[0])


def _grpc_call(app: Any) -> Callable[[], Awaitable[None]]:
    from endpointkit.serving._grpc import grpc_predict_v2_pb2 as pb
    from endpointkit.serving.contracts import oip_grpc

    request = pb.ModelInferRequest(model_name="model")
    request.inputs.add(name="input-0", datatype="INT64", shape=[1, 128])
    request.raw_input_contents.append(TOKENS.tobytes())
    wire = request.SerializeToString()

    async def one() -> None:
        response = await oip_grpc.model_infer(app, pb.ModelInferRequest.FromString(wire))
        data = response.SerializeToString()
        assert data

    return one


async def _timed(one: Callable[[], Awaitable[None]], requests: int, repeats: int) -> float:
    for _ in range(requests // 5):  # warm-up
        await one()
    worst = 0.0
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(requests):
            await one()
        worst = max(worst, (time.process_time() - t0) * 1e6 / requests)
    return worst


def measure(requests: int, repeats: int) -> dict[str, float]:
    """Worst-of-``repeats`` microseconds of CPU per request, by case."""
    import uvloop

    return uvloop.run(_measure(requests, repeats))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving.binary")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", metavar="DIR", help="endpointkit before the change, to compare")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args(argv)
    before: dict[str, float] = {}
    if args.before:
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([args.before, str(root)])}
        cmd = [sys.executable, "-m", "benchmarks.serving.binary", "--json",
               "--requests", str(args.requests), "--repeats", str(args.repeats)]  # fmt: skip
        # run from DIR: ``-m`` puts the working directory first on sys.path
        done = subprocess.run(cmd, env=env, cwd=args.before, capture_output=True, timeout=600)
        if done.returncode:
            print(done.stderr.decode()[-2000:], file=sys.stderr)
            return 1
        before = json.loads(done.stdout.decode().strip().splitlines()[-1])
    after = measure(args.requests, args.repeats)
    if args.json:
        print(json.dumps(after))
        return 0
    lines = [
        "# 128-token request (1 x 128 int64): server CPU per request by encoding",
        "",
        "Generated by `python -m benchmarks.serving.binary"
        + (" --before DIR" if before else "")
        + "` (benchmarks/serving/binary.py): the whole app in process on uvloop, inline "
        f"row-sum predictor, {args.requests} requests per run, worst of {args.repeats} runs; "
        f"load average {[round(x, 2) for x in os.getloadavg()]} on {os.cpu_count()} CPUs.",
        "",
        "| encoding | before us/req | after us/req |" if before else "| encoding | us/req |",
        "|---|---:|---:|" if before else "|---|---:|",
    ]
    for name, us in after.items():
        if before:
            was = before.get(name)
            lines.append(f"| {name} | {'' if was is None else f'{was:.1f}'} | {us:.1f} |")
        else:
            lines.append(f"| {name} | {us:.1f} |")
    text = "\n".join(lines) + "\n"
    out = RESULTS / "binary.md"
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
