"""Dynamic batching: 64 concurrent callers across the three contracts each get exactly their own
results, in order; a bad request in a merged batch fails only itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Server, predictor_server

CALLERS = 64


@pytest.fixture(scope="module")
def batched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with predictor_server(tmp_path_factory.mktemp("batch"), "BatchedEcho") as server:
        yield server


async def _fire(url: str, n: int, make: Any) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(make(client, i) for i in range(n)))


def test_vertex_and_sagemaker_callers_get_their_own_results(batched: Server) -> None:
    async def call(client: httpx.AsyncClient, i: int) -> httpx.Response:
        instances = [f"c{i}-{k}" for k in range(1 + i % 3)]
        if i % 2:
            return await client.post("/predict", json={"instances": instances})
        return await client.post("/invocations", json={"instances": instances})

    responses = asyncio.run(_fire(batched.url, CALLERS, call))
    sizes = []
    for i, r in enumerate(responses):
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert [p["echo"] for p in preds] == [f"c{i}-{k}" for k in range(1 + i % 3)]
        sizes += [p["batch"] for p in preds]
    assert max(sizes) > 1  # requests really were merged
    assert batched.metric("endpointkit_batch_size_count") < CALLERS


def test_oip_callers_get_their_own_rows(tmp_path: Path) -> None:
    with predictor_server(tmp_path, "BatchedSum") as server:

        async def call(client: httpx.AsyncClient, i: int) -> httpx.Response:
            rows = [[float(i), float(k)] for k in range(1 + i % 2)]
            tensor = {"name": "x", "shape": [len(rows), 2], "datatype": "FP64", "data": rows}
            return await client.post("/v2/models/model/infer", json={"inputs": [tensor]})

        responses = asyncio.run(_fire(server.url, CALLERS, call))
        for i, r in enumerate(responses):
            assert r.status_code == 200, r.text
            out = r.json()["outputs"][0]
            assert out["data"] == [float(i) + k for k in range(1 + i % 2)]
            assert out["shape"] == [1 + i % 2]
        assert server.metric("endpointkit_batch_size_count") < CALLERS


def test_a_bad_request_fails_alone_and_its_batch_mates_get_their_answers(
    tmp_path: Path,
) -> None:
    async def call(client: httpx.AsyncClient, i: int) -> httpx.Response:
        if i == 0:
            return await client.post("/predict", json={"instances": ["fail"]})
        return await client.post("/predict", json={"instances": [i]})

    # a partial batch waits up to 1 s for more: the 16 requests become one batch
    with predictor_server(tmp_path, "BatchedEcho", ENDPOINTKIT_MAX_LATENCY_MS="1000") as server:
        responses = asyncio.run(_fire(server.url, 16, call))
        assert responses[0].status_code == 422  # a ValueError: the input was rejected
        assert responses[0].json()["code"] == "predictor_rejected"
        for i, r in enumerate(responses[1:], 1):
            assert r.status_code == 200, r.text
            assert [p["echo"] for p in r.json()["predictions"]] == [i]
        # it was merged with the others (else this shows nothing): its batch ran again,
        # in halves, down to the bad request alone
        assert server.metric("endpointkit_batch_size_sum") > 16
        assert server.client.post("/predict", json={"instances": [1]}).status_code == 200


def test_a_predictor_failing_as_a_whole_fails_its_batch_without_retries(
    tmp_path: Path,
) -> None:
    """Retrying halves helps only when one request is at fault; a RuntimeError from the model
    would only repeat (and rerun its batch-mates' rows, side effects included)."""

    async def call(client: httpx.AsyncClient, i: int) -> httpx.Response:
        instance = "crash" if i == 0 else i
        return await client.post("/predict", json={"instances": [instance]})

    with predictor_server(tmp_path, "BatchedEcho", ENDPOINTKIT_MAX_LATENCY_MS="1000") as server:
        responses = asyncio.run(_fire(server.url, 16, call))
        assert [r.status_code for r in responses] == [500] * 16
        assert server.metric("endpointkit_batch_size_sum") == 16  # one call, no retries
        assert server.client.post("/predict", json={"instances": [1]}).status_code == 200


def test_batched_errors_map_per_contract(tmp_path: Path) -> None:
    with predictor_server(tmp_path, "BatchedSum") as server:
        r = server.client.post("/predict", json={"instances": [[-1.0, 0.0]]})
        assert (r.status_code, r.json()["code"]) == (500, "predictor_error")
        r = server.client.post("/invocations", json=[[-1.0, 0.0]])
        assert (r.status_code, r.json()["code"]) == (500, "predictor_error")
        tensor = {"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [-1, 0]}
        r = server.client.post("/v2/models/model/infer", json={"inputs": [tensor]})
        assert r.status_code == 500
        assert isinstance(r.json()["error"], str)
