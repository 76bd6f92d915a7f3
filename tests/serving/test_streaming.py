"""Response streaming from the real server process: items leave as the predictor makes them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import Server, predictor_server
from tests.streams import assert_streamed, body, timed_frames

SSE = {"accept": "text/event-stream", "content-type": "application/json"}
LINES = {"accept": "application/jsonlines", "content-type": "application/json"}


@pytest.fixture(scope="module")
def streamer(tmp_path_factory: pytest.TempPathFactory) -> Server:
    tmp = tmp_path_factory.mktemp("streamer")
    log = tmp / "streams.log"
    with predictor_server(tmp, "Streamer", STREAM_LOG=str(log)) as server:
        server.stream_log = log  # type: ignore[attr-defined]
        yield server


def frames_of(server: Server, path: str, payload: bytes, headers: dict[str, str]) -> list:
    with server.client.stream("POST", path, content=payload, headers=headers) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in answer.headers
        return timed_frames(answer.iter_raw(), sse=headers["accept"] == SSE["accept"])


def test_items_arrive_as_they_are_made_on_both_routes(streamer: Server) -> None:
    payload = body([10, 20, 30, 40], gap_s=0.2)
    for path, headers in (("/invocations", SSE), ("/predict", LINES)):
        frames = frames_of(streamer, path, payload, headers)
        assert [f for _, f in frames] == [{"index": i, "item": 10 * (i + 1)} for i in range(4)]
        assert_streamed([t for t, _ in frames], 0.2)


def test_async_generator_predictor_streams(tmp_path: Path) -> None:
    with predictor_server(tmp_path, "AsyncStreamer") as server:
        frames = frames_of(server, "/predict", body([1, 2, 3, 4], gap_s=0.2), SSE)
        assert [f["index"] for _, f in frames] == [0, 1, 2, 3]
        assert_streamed([t for t, _ in frames], 0.2)
        assert server.client.get("/ping").status_code == 200


def test_stream_headers_and_formats(streamer: Server) -> None:
    with streamer.client.stream(
        "POST",
        "/invocations",
        content=body(["raw:plain text", 2]),
        headers={**LINES, "x-amzn-sagemaker-custom-attributes": "trace=7"},
    ) as answer:
        assert answer.headers["content-type"] == "application/jsonlines"
        assert answer.headers["x-amzn-sagemaker-custom-attributes"] == "streamed=trace=7"
        assert answer.read() == b'"plain text"\n{"index":1,"item":2}\n'
    # A client preferring JSON gets the ordinary answer, with its length.
    answer = streamer.client.post(
        "/invocations",
        content=body([[1]]),
        headers={"accept": "application/json, text/event-stream;q=0.5"},
    )
    assert answer.headers["content-length"] == str(len(answer.content))
    assert answer.json() == {"predictions": [1.0]}


def test_predictor_without_predict_stream_sends_one_chunk(tmp_path: Path) -> None:
    with predictor_server(tmp_path, "Sum") as server:
        for path in ("/invocations", "/predict"):
            answer = server.client.post(path, content=body([[1, 2], [3, 4]]), headers=SSE)
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "text/event-stream"
            assert answer.content == b'data: {"predictions":[3.0,7.0]}\n\n'
        answer = server.client.post("/invocations", content=b"[[1, 2]]", headers=LINES)
        assert answer.content == b"[3.0]\n"


def test_error_before_the_first_item_is_an_ordinary_error(streamer: Server) -> None:
    answer = streamer.client.post("/invocations", content=body([1, "bad"]), headers=SSE)
    assert answer.status_code == 422
    assert answer.json()["code"] == "predictor_rejected"


def test_error_mid_stream_breaks_the_stream_and_the_server_keeps_serving(
    streamer: Server,
) -> None:
    got: list[bytes] = []
    with streamer.client.stream("POST", "/predict", content=body([1, "boom"]), headers=SSE) as a:
        assert a.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):  # no last chunk: a broken stream
            got.extend(a.iter_raw())
    first, error = b"".join(got).split(b"\n\n", 1)
    assert json.loads(first.removeprefix(b"data: ")) == {"index": 0, "item": 1}
    assert error.startswith(b"event: error\ndata: ")
    report = json.loads(error.split(b"data: ", 1)[1])
    assert report["code"] == "predictor_error"
    assert "secret" not in report["error"]
    assert "RuntimeError: secret internal detail" in streamer.log()
    assert streamer.client.post("/invocations", content=body([[5]])).json() == {
        "predictions": [5.0]
    }
    assert streamer.metric("endpointkit_in_flight") == 0


def test_client_going_away_closes_the_predictors_stream(streamer: Server) -> None:
    log: Path = streamer.stream_log  # type: ignore[attr-defined]
    payload = body([777, *range(20)], gap_s=0.1)
    with streamer.client.stream("POST", "/invocations", content=payload, headers=SSE) as answer:
        next(answer.iter_raw())  # the first item; then hang up
    deadline = time.monotonic() + 10
    while "closed 777" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the stream kept running after the client left"
        time.sleep(0.05)
    assert streamer.client.get("/ping").status_code == 200
    assert streamer.metric("endpointkit_in_flight") == 0
