"""The mock speaks the serving container's wire format: for the same predictor and request, the
bytes the mock answers equal the bytes the real ASGI app sends (called in process through httpx's
ASGITransport, as STYLE.md section 8 asks of unit tests)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from endpointkit.adapters.mock import MockBackend
from endpointkit.errors import ModelError
from endpointkit.invocation import InvokeRequest
from endpointkit.serving.app import ServingApp
from endpointkit.serving.settings import Settings


class Streamer:
    """Streams one item of every kind a predictor may yield; predicts a class-probability
    dict per instance (integer keys, as sklearn's classes often are)."""

    def predict(self, instances: list[Any], parameters: dict[str, Any] | None) -> list[Any]:
        return [{0: 0.25, 1: 0.75, "label": f"row {i}"} for i, _ in enumerate(instances)]

    def predict_stream(
        self, instances: list[Any], parameters: dict[str, Any] | None
    ) -> Iterator[Any]:
        yield "plain text"
        yield "two\nlines"
        yield 'a "quoted" string'
        yield b"raw bytes\n"
        yield {"token": "é", "index": 1}
        yield [1, 2.5, None, True]
        yield 3
        yield 0.1
        yield {7: "integer key"}


class Whole:
    """No predict_stream: a streaming request gets the whole answer as one item."""

    def predict(self, instances: list[Any], parameters: dict[str, Any] | None) -> list[Any]:
        return [[float(sum(row)), len(row)] if isinstance(row, list) else row for row in instances]


BODIES = [
    b'{"instances": [[1, 2], [3]], "parameters": {"k": 1}}',
    b"[[1, 2], [3, 4, 5]]",
    b'{"text": "one instance"}',
]
BODY_IDS = ["envelope", "list", "one"]
STREAM_ACCEPTS = [
    "text/event-stream",
    "application/jsonlines",
    "application/x-ndjson",
    "application/json",
    "*/*",
    "application/json, text/event-stream;q=0.5",  # JSON preferred: no streaming
    "text/event-stream;q=0.2, application/jsonlines",  # JSON lines preferred
]
INVOKE_ACCEPTS = ["application/json", "*/*", "text/csv", "text/event-stream"]


def serve(
    predictor: Any, body: bytes, accept: str | None, extra: dict[str, str] | None = None
) -> tuple[int, str, bytes]:
    """(status, content type, body) from the real serving app's /invocations."""
    app = ServingApp(Settings.from_env({"ENDPOINTKIT_REQUEST_LOG": "off"}), predictor=predictor)
    headers = {"content-type": "application/json", **(extra or {})}
    if accept is not None:
        headers["accept"] = accept

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serving") as client:
            return await client.post("/invocations", content=body, headers=headers)

    try:
        response = asyncio.run(post())
    finally:
        app.runtime.close()
    return response.status_code, response.headers["content-type"], response.content


def mock_of(predictor: Any) -> MockBackend:
    mock = MockBackend()
    mock.add_endpoint("e", {"v1": predictor})
    return mock


@pytest.mark.parametrize("accept", STREAM_ACCEPTS)
@pytest.mark.parametrize("predictor", [Streamer(), Whole()], ids=["streams", "whole"])
@pytest.mark.parametrize("body", BODIES, ids=BODY_IDS)
def test_invoke_stream_sends_the_servers_bytes(predictor: Any, body: bytes, accept: str) -> None:
    status, content_type, expected = serve(predictor, body, accept)
    assert status == 200
    stream = mock_of(predictor).invoke_stream(InvokeRequest("e", body, accept=accept))
    assert stream.read() == expected
    assert stream.content_type == content_type


@pytest.mark.parametrize("accept", INVOKE_ACCEPTS)
@pytest.mark.parametrize("predictor", [Streamer(), Whole()], ids=["dicts", "numbers"])
@pytest.mark.parametrize("body", BODIES, ids=BODY_IDS)
def test_invoke_sends_the_servers_bytes(predictor: Any, body: bytes, accept: str) -> None:
    status, content_type, expected = serve(predictor, body, accept)
    assert status == 200
    result = mock_of(predictor).invoke(InvokeRequest("e", body, accept=accept))
    assert (result.body, result.content_type) == (expected, content_type)


class Words:
    def predict(self, instances: list[Any], parameters: dict[str, Any] | None) -> list[Any]:
        return ["plain text" for _ in instances]

    def predict_stream(
        self, instances: list[Any], parameters: dict[str, Any] | None
    ) -> Iterator[str]:
        yield "plain text"
        yield "two\nlines"


def test_a_str_item_is_a_json_string_on_a_json_lines_stream() -> None:
    """The disagreement issue 11 reported: the old mock sent a str item raw."""
    stream = mock_of(Words()).invoke_stream(
        InvokeRequest("e", b"[1]", accept="application/jsonlines")
    )
    assert [json.loads(line) for line in stream.read().splitlines()] == [
        "plain text",
        "two\nlines",
    ]


@pytest.mark.parametrize("accept", ["text/event-stream;q=0", "image/png"])
def test_an_accept_nothing_satisfies_is_refused_like_the_server(accept: str) -> None:
    status, _, body = serve(Words(), b"[1]", accept)
    assert status == 406
    mock = mock_of(Words())
    for call in (mock.invoke, mock.invoke_stream):
        with pytest.raises(ModelError) as caught:
            call(InvokeRequest("e", b"[1]", accept=accept))
        assert caught.value.status == 406
        assert json.loads(caught.value.body)["code"] == json.loads(body)["code"]


class Tagger:
    """Reads the custom attributes and replaces them, as the SageMaker contract allows."""

    def predict(self, instances: list[Any], parameters: dict[str, Any] | None) -> list[Any]:
        assert parameters is not None
        seen = parameters["custom_attributes"]
        parameters["custom_attributes"] = f"seen={seen}"
        return [seen for _ in instances]


def test_custom_attributes_reach_the_predictor_and_come_back_like_the_server() -> None:
    header = "x-amzn-sagemaker-custom-attributes"
    app = ServingApp(Settings.from_env({"ENDPOINTKIT_REQUEST_LOG": "off"}), predictor=Tagger())

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serving") as client:
            return await client.post("/invocations", content=b"[1]", headers={header: "trace=7"})

    try:
        served = asyncio.run(post())
    finally:
        app.runtime.close()
    result = mock_of(Tagger()).invoke(InvokeRequest("e", b"[1]", custom_attributes="trace=7"))
    assert (result.body, result.custom_attributes) == (served.content, served.headers[header])
    assert result.custom_attributes == "seen=trace=7"
