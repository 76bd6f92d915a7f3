"""OIP v2 over gRPC (``--grpc-port``), driven by real clients: ``tritonclient.grpc``, its own
generated stubs for hand-made requests (typed contents), and ``grpc.health.v1`` as
``grpc_health_probe`` calls it. Every server is the real process (conftest.py)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import Server, clean_env, free_port, start_server

grpc = pytest.importorskip("grpc", reason="pip install 'endpointkit[grpc]'")
tgrpc = pytest.importorskip("tritonclient.grpc", reason="pip install 'tritonclient[grpc]'")
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from tritonclient.grpc import service_pb2, service_pb2_grpc  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

SERVICE = "inference.GRPCInferenceService"
MAX_BYTES = 64 * 1024


def _grpc_args(tmp: Path, predictor: str, port: int, *extra: str) -> list[str]:
    (tmp / "model").mkdir(exist_ok=True)
    args = ["--model-dir", str(tmp / "model"), "--predictor", predictor]
    return [*args, "--grpc-port", str(port), *extra]


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    """Echo (returns its instances; ``"bad"`` 422, ``"crash"`` 500, ``sleep`` parameter)."""
    tmp = tmp_path_factory.mktemp("grpc")
    port = free_port()
    args = _grpc_args(tmp, "predictors:Echo", port, "--max-in-flight", "1")
    env = {
        "ENDPOINTKIT_MODEL_NAME": "adder",
        "ENDPOINTKIT_VERSION": "v3",
        "ENDPOINTKIT_OIP_MAX_REQUEST_BYTES": str(MAX_BYTES),
        "ENDPOINTKIT_REQUEST_LOG": "errors",
    }
    with start_server(tmp, args, env) as server:
        yield server, port


@pytest.fixture
def client(echo: tuple[Server, int]) -> Iterator[Any]:
    c = tgrpc.InferenceServerClient(url=f"127.0.0.1:{echo[1]}")
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def stub(echo: tuple[Server, int]) -> Iterator[Any]:
    """tritonclient's own generated stub, for requests its client never builds."""
    channel = grpc.insecure_channel(f"127.0.0.1:{echo[1]}")
    try:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)
    finally:
        channel.close()


def test_health_and_metadata(client: Any) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("adder")
    assert client.is_model_ready("adder", "v3")
    assert not client.is_model_ready("nope")
    assert not client.is_model_ready("adder", "v9")
    assert client.get_server_metadata().name == "endpointkit"
    meta = client.get_model_metadata("adder")
    assert meta.name == "adder"
    assert list(meta.versions) == ["v3"]
    assert meta.inputs[0].name == "input-0"
    with pytest.raises(InferenceServerException, match="Unknown model"):
        client.get_model_metadata("nope")


@pytest.mark.parametrize(
    ("datatype", "array"),
    [
        ("FP32", np.arange(8, dtype=np.float32).reshape(2, 4)),
        ("INT64", np.arange(-3, 3, dtype=np.int64).reshape(3, 2)),
        ("UINT8", np.array([[0, 255], [7, 9]], dtype=np.uint8)),
        ("BOOL", np.array([[True], [False]])),
        ("FP16", np.array([[0.5, -2.0]], dtype=np.float16)),
        ("BYTES", np.array([[b"ab"], [b""], [b"\x00\xff"]], dtype=object)),
    ],
)
def test_tritonclient_infer_roundtrip(client: Any, datatype: str, array: Any) -> None:
    """tritonclient sends raw_input_contents; every datatype comes back as it went."""
    inp = tgrpc.InferInput("input-0", list(array.shape), datatype)
    inp.set_data_from_numpy(array)
    result = client.infer("adder", [inp], request_id="r1")
    out = result.as_numpy("output-0")
    assert out.shape == array.shape
    np.testing.assert_array_equal(out, array)
    response = result.get_response()
    assert response.id == "r1"
    assert response.model_name == "adder"
    assert response.model_version == "v3"


def _typed(datatype: str, shape: list[int], **contents: Any) -> Any:
    request = service_pb2.ModelInferRequest(model_name="adder", id="t1")
    tensor = request.inputs.add(name="input-0", datatype=datatype, shape=shape)
    for field, values in contents.items():
        getattr(tensor.contents, field).extend(values)
    return request


def _raw_outputs(response: Any) -> Any:
    out = response.outputs[0]
    dtype = {"INT64": np.int64, "INT8": np.int8, "FP64": np.float64, "UINT16": np.uint16}
    return np.frombuffer(response.raw_output_contents[0], dtype=dtype[out.datatype]).reshape(
        list(out.shape)
    )


def test_typed_contents(stub: Any) -> None:
    """Typed ``contents`` (what KServe's clients send) decode per datatype."""
    values = list(range(-64, 64))
    response = stub.ModelInfer(_typed("INT64", [2, 64], int64_contents=values))
    assert response.id == "t1"
    assert response.outputs[0].datatype == "INT64"
    np.testing.assert_array_equal(_raw_outputs(response), np.array(values).reshape(2, 64))
    response = stub.ModelInfer(_typed("INT8", [1, 3], int_contents=[-128, 0, 127]))
    assert response.outputs[0].datatype == "INT8"
    np.testing.assert_array_equal(_raw_outputs(response), [[-128, 0, 127]])
    response = stub.ModelInfer(_typed("UINT16", [2], uint_contents=[0, 65535]))
    np.testing.assert_array_equal(_raw_outputs(response), [0, 65535])


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (_typed("INT8", [1, 2], int_contents=[1, 300]), "does not fit INT8"),
        (_typed("INT64", [2, 2], int64_contents=[1, 2, 3]), "needs 4 values"),
        (_typed("FP16", [1], fp32_contents=[1.0]), "raw_input_contents only"),
        (_typed("FP99", [1], fp32_contents=[1.0]), "datatype must be one of"),
        (
            service_pb2.ModelInferRequest(
                model_name="adder",
                inputs=[{"name": "input-0", "datatype": "INT64", "shape": [2]}],
                raw_input_contents=[b"\x00" * 12],
            ),
            "holds 12 bytes; shape \\[2\\] of INT64 needs 16",
        ),
        (
            service_pb2.ModelInferRequest(
                model_name="adder",
                inputs=[
                    {
                        "name": "input-0",
                        "datatype": "INT64",
                        "shape": [1],
                        "contents": {"int64_contents": [1]},
                    }
                ],
                raw_input_contents=[b"\x00" * 8],
            ),
            "not both",
        ),
        (service_pb2.ModelInferRequest(model_name="adder"), "no inputs"),
    ],
)
def test_bad_tensors_are_invalid_argument(stub: Any, request_: Any, match: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(request_)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(match, info.value.details()), info.value.details()


def test_errors_map_to_grpc_codes(stub: Any) -> None:
    """The predictor's errors and unknown models: the REST message, a gRPC status, the
    request id in the trailing metadata; a 500's detail stays in the server log."""
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(service_pb2.ModelInferRequest(model_name="x"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "Unknown model 'x'" in info.value.details()
    request = _typed("FP32", [1], fp32_contents=[1.0])
    request.ClearField("id")
    request.parameters["sleep"].string_param = "inf"  # Echo: time.sleep(inf) -> OverflowError
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(request)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "too large" not in info.value.details()  # the exception's text stays in the log
    trailing = dict(info.value.trailing_metadata())
    assert trailing["x-request-id"] in info.value.details()
    request = _typed("FP32", [1], fp32_contents=[1.0])
    request.parameters["sleep"].string_param = "soon"  # float("soon") -> ValueError
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "rejected the input" in info.value.details()
    assert dict(info.value.trailing_metadata())["x-request-id"] == "t1"


def test_payload_limit(client: Any) -> None:
    """Over ENDPOINTKIT_OIP_MAX_REQUEST_BYTES: refused before it reaches the model."""
    big = np.zeros((1, MAX_BYTES // 4 + 16), dtype=np.float32)
    inp = tgrpc.InferInput("input-0", list(big.shape), "FP32")
    inp.set_data_from_numpy(big)
    with pytest.raises(InferenceServerException, match="RESOURCE_EXHAUSTED"):
        client.infer("adder", [inp])


def test_in_flight_limit_shared_with_http(echo: tuple[Server, int], client: Any) -> None:
    """--max-in-flight 1: a slow gRPC call holds the one slot; HTTP and gRPC both get 503 /
    UNAVAILABLE with Retry-After meanwhile, and the slow call still succeeds."""
    server, port = echo
    x = np.ones((1, 2), dtype=np.float32)
    inp = tgrpc.InferInput("input-0", [1, 2], "FP32")
    inp.set_data_from_numpy(x)
    results: list[Any] = []
    slow = threading.Thread(
        target=lambda: results.append(client.infer("adder", [inp], parameters={"sleep": "2.0"}))
    )
    slow.start()
    try:
        deadline = time.monotonic() + 10
        while server.metric("endpointkit_in_flight") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(_typed("FP32", [1, 2], fp32_contents=[1.0, 2.0]))
        channel.close()
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert dict(info.value.trailing_metadata())["retry-after"] == "1"
        body = {"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1], "data": [1]}]}
        assert server.client.post("/v2/models/adder/infer", json=body).status_code == 503
    finally:
        slow.join(10)
    np.testing.assert_array_equal(results[0].as_numpy("output-0"), x)


def test_metrics_count_grpc_calls(echo: tuple[Server, int], client: Any) -> None:
    server, _ = echo
    before = server.metric("endpointkit_grpc_requests_total{worker")
    assert client.is_server_ready()
    text = server.client.get("/metrics").text
    assert 'method="ModelInfer",code="OK"' in text
    assert 'method="ModelInfer",code="INVALID_ARGUMENT"' in text
    assert "endpointkit_grpc_request_duration_seconds_count{" in text
    assert server.metric("endpointkit_grpc_requests_total") >= before + 1
    assert server.metric("endpointkit_in_flight") == 0


# -- health, loading and drain -----------------------------------------------------------------


def _check(channel: Any, service: str = "") -> Any:
    """What grpc_health_probe does: Check, then look at the status."""
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_health_gated_on_model_and_drain(tmp_path: Path) -> None:
    """grpc.health.v1: NOT_SERVING while the model loads, SERVING once ready; SIGTERM turns
    it NOT_SERVING, ends Watch streams, lets the in-flight call finish, refuses new calls,
    and the process exits 0."""
    gate = tmp_path / "gate"
    port = free_port()
    args = _grpc_args(tmp_path, "grpc_predictors:GatedSlow", port, "--grace", "10")
    with start_server(tmp_path, args, {"GATE_FILE": str(gate)}, ready=False) as server:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        serving = health_pb2.HealthCheckResponse.SERVING
        assert _check(channel) == not_serving
        assert _check(channel, SERVICE) == not_serving
        with pytest.raises(grpc.RpcError) as info:
            _check(channel, "other.Service")
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        assert not stub.ServerReady(service_pb2.ServerReadyRequest()).ready
        assert stub.ServerLive(service_pb2.ServerLiveRequest()).live
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(_model_request(0))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "still loading" in info.value.details()

        watched: list[int] = []
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=60
        )
        watcher = threading.Thread(target=lambda: watched.extend(r.status for r in watch))
        watcher.start()

        gate.touch()
        deadline = time.monotonic() + 30
        while _check(channel) != serving and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _check(channel, SERVICE) == serving
        assert stub.ServerReady(service_pb2.ServerReadyRequest()).ready
        while watched[-1:] != [serving] and time.monotonic() < deadline:  # polled: 0.5 s
            time.sleep(0.05)

        slow = stub.ModelInfer.future(_model_request(1.5), timeout=30)
        deadline = time.monotonic() + 10
        while server.metric("endpointkit_in_flight") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.proc.send_signal(signal.SIGTERM)
        watcher.join(10)
        assert not watcher.is_alive(), "the Watch stream outlived the drain"
        assert watched == [not_serving, serving, not_serving]
        fresh = grpc.insecure_channel(f"127.0.0.1:{port}")
        with pytest.raises(grpc.RpcError) as info:
            _check(fresh)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        fresh.close()
        answer = slow.result()  # the in-flight call finished within the grace period
        np.testing.assert_array_equal(np.frombuffer(answer.raw_output_contents[0]), [1.0])
        channel.close()
        assert server.proc.wait(20) == 0


def _model_request(sleep: float) -> Any:
    request = service_pb2.ModelInferRequest(model_name="model")
    request.inputs.add(name="input-0", datatype="FP64", shape=[1], contents={"fp64_contents": [1]})
    if sleep:
        request.parameters["sleep"].string_param = str(sleep)
    return request


# -- workers and startup failures --------------------------------------------------------------


def test_several_workers_share_the_grpc_port(tmp_path: Path) -> None:
    """Two workers bind the same gRPC port (SO_REUSEPORT); each new connection is served."""
    port = free_port()
    args = _grpc_args(tmp_path, "predictors:Echo", port, "--workers", "2")
    with start_server(tmp_path, args, {"ENDPOINTKIT_REQUEST_LOG": "off"}) as server:
        deadline = time.monotonic() + 60
        while server.log().count('"grpc_started"') < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.log().count('"grpc_started"') == 2, server.log()
        for _ in range(6):  # a channel per call: a new connection each time
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
                answer = stub.ModelInfer(_model_request(0), timeout=30)
                assert answer.outputs[0].datatype == "FP64"


def _failed_start(tmp_path: Path, grpc_port: int, pythonpath: str = "") -> tuple[int, str]:
    """Run the server expecting it to stop by itself; its exit code and output."""
    (tmp_path / "model").mkdir(exist_ok=True)
    env = clean_env()
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, env["PYTHONPATH"]])
    cmd = [sys.executable, "-m", "endpointkit.serving", "--port", str(free_port())]
    cmd += ["--workers", "1", "--grpc-port", str(grpc_port)]
    cmd += ["--model-dir", str(tmp_path / "model"), "--predictor", "predictors:Echo"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def test_taken_grpc_port_fails_startup(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, output = _failed_start(tmp_path, taken.getsockname()[1])
    assert code == 3, output
    assert "Cannot serve gRPC on 127.0.0.1:" in output
    assert "ENDPOINTKIT_GRPC_PORT" in output


def test_missing_extra_names_it(tmp_path: Path) -> None:
    shim = tmp_path / "shim" / "grpc_health"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('no grpc_health here')\n")
    code, output = _failed_start(tmp_path, free_port(), str(shim.parent))
    assert code == 3, output
    assert "pip install 'endpointkit[grpc]'" in output
