"""Open Inference Protocol v2 over gRPC from the image (`ENDPOINTKIT_GRPC_PORT`), called with
real clients: `tritonclient.grpc`, its generated stubs for hand-made requests, and
`grpc.health.v1` as `grpc_health_probe` (and Vertex's gRPC health check) calls it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from .conftest import IRIS_CLASSES, IRIS_ROWS, Container, Runner, free_port, podman

pytestmark = pytest.mark.container

SERVICE = "inference.GRPCInferenceService"


@pytest.fixture(scope="module")
def served(image: str, iris_model: Path) -> Iterator[tuple[Container, int]]:
    """The iris model with HTTP and gRPC each on a free port; (container, gRPC port)."""
    runner = Runner(image)
    port, grpc_port = free_port(), free_port()
    env = {
        "ENDPOINTKIT_PORT": str(port),
        "ENDPOINTKIT_GRPC_PORT": str(grpc_port),
        "ENDPOINTKIT_MODEL_NAME": "iris",
        "ENDPOINTKIT_WORKERS": "1",
    }
    try:
        box = runner(None, env, {iris_model: "/opt/ml/model"}, port=port, ready="/v2/health/ready")
        yield box, grpc_port
    finally:
        runner.close()


@pytest.fixture
def channel(served: tuple[Container, int]) -> Iterator[grpc.Channel]:
    ch = grpc.insecure_channel(f"127.0.0.1:{served[1]}")
    try:
        yield ch
    finally:
        ch.close()


def iris_request(rows: list[list[float]], **parameters: str) -> Any:
    """A ModelInferRequest of ``rows`` as FP32 typed contents."""
    request = service_pb2.ModelInferRequest(model_name="iris", id="g1")
    request.inputs.add(
        name="x",
        datatype="FP32",
        shape=[len(rows), len(rows[0])],
        contents={"fp32_contents": [v for row in rows for v in row]},
    )
    for key, value in parameters.items():
        request.parameters[key].string_param = value
    return request


def test_live_ready_and_metadata(served: tuple[Container, int]) -> None:
    client = tgrpc.InferenceServerClient(url=f"127.0.0.1:{served[1]}")
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("iris")
        assert not client.is_model_ready("nope")
        assert client.get_model_metadata("iris").name == "iris"
    finally:
        client.close()


def test_infer_fp32(served: tuple[Container, int]) -> None:
    """tritonclient's FP32 tensor (raw contents) gives the same classes as HTTP and SageMaker."""
    client = tgrpc.InferenceServerClient(url=f"127.0.0.1:{served[1]}")
    try:
        tensor = tgrpc.InferInput("x", [2, 4], "FP32")
        tensor.set_data_from_numpy(np.array(IRIS_ROWS, dtype=np.float32))
        result = client.infer("iris", [tensor], request_id="r1")
        response = result.get_response()
        assert response.id == "r1"
        assert response.model_name == "iris"
        answer = result.as_numpy(response.outputs[0].name)
        assert answer is not None
        assert answer.tolist() == IRIS_CLASSES
    finally:
        client.close()


def test_infer_typed_fp32_contents(channel: grpc.Channel) -> None:
    """Typed ``fp32_contents`` (what KServe's clients send) decode the same way."""
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    response = stub.ModelInfer(iris_request(IRIS_ROWS), timeout=30)
    assert response.id == "g1"
    out = response.outputs[0]
    assert list(out.shape) == [2]
    raw = np.frombuffer(response.raw_output_contents[0], dtype=np.dtype(out.datatype.lower()))
    assert raw.tolist() == IRIS_CLASSES


def test_health_check(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.RpcError) as info:
        health.Check(health_pb2.HealthCheckRequest(service="other.Service"), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (iris_request([[5.1, 3.5, 1.4]]), r"expected instances of shape \[4\], got \[3\]"),
        (
            service_pb2.ModelInferRequest(
                model_name="iris",
                inputs=[
                    {
                        "name": "x",
                        "datatype": "FP32",
                        "shape": [2, 4],
                        "contents": {"fp32_contents": [1.0, 2.0, 3.0]},
                    }
                ],
            ),
            "needs 8 values",
        ),
    ],
    ids=["three-features", "too-few-values"],
)
def test_invalid_request_is_invalid_argument(
    channel: grpc.Channel, request_: Any, match: str
) -> None:
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(request_, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(match, info.value.details() or ""), info.value.details()


def test_unknown_model_is_not_found(channel: grpc.Channel) -> None:
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    request = iris_request(IRIS_ROWS)
    request.model_name = "nope"
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "nope" in (info.value.details() or "")


SLOW_IRIS = """
import os, time
import joblib
import numpy as np

class SlowIris:
    def load(self, model_dir):
        self.model = joblib.load(os.path.join(model_dir, "model.joblib"))

    def predict(self, instances, parameters=None):
        time.sleep(float((parameters or {}).get("sleep", 0)))
        return self.model.predict(np.asarray(instances, dtype=float))
"""


def _in_flight(box: Container) -> float:
    text = box.client.get("/metrics", timeout=5).text
    found = re.search(r"^endpointkit_in_flight(?:\{[^}]*\})? (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_sigterm_drains_grpc_and_exits_zero(
    run_container: Runner, iris_model: Path, model_dir: Callable[[dict[str, str]], Path]
) -> None:
    """SIGTERM to the container (PID 1): health turns NOT_SERVING / new calls are refused, the
    gRPC call in flight still gets its answer, and the server exits 0 well before SIGKILL."""
    d = model_dir({"slowiris.py": SLOW_IRIS})
    (d / "model.joblib").write_bytes((iris_model / "model.joblib").read_bytes())
    (d / "model.joblib").chmod(0o644)
    port, grpc_port = free_port(), free_port()
    env = {
        "ENDPOINTKIT_PORT": str(port),
        "ENDPOINTKIT_GRPC_PORT": str(grpc_port),
        "ENDPOINTKIT_MODEL_NAME": "iris",
        "ENDPOINTKIT_PREDICTOR": "slowiris:SlowIris",
        "ENDPOINTKIT_WORKERS": "1",
        "ENDPOINTKIT_GRACE_S": "25",
    }
    box = run_container(None, env, {d: "/opt/ml/model"}, port=port, ready="/v2/health/ready")
    target = f"127.0.0.1:{grpc_port}"
    channel = grpc.insecure_channel(target)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == serving
    slow = stub.ModelInfer.future(iris_request(IRIS_ROWS, sleep="4"), timeout=60)
    deadline = time.monotonic() + 20
    while _in_flight(box) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _in_flight(box) >= 1, box.logs()

    started = time.monotonic()
    podman("kill", "--signal", "TERM", box.name)
    time.sleep(0.5)  # the server stops accepting; the slow call has seconds left
    fresh = grpc.insecure_channel(target)
    with pytest.raises(grpc.RpcError) as info:
        service_pb2_grpc.GRPCInferenceServiceStub(fresh).ModelInfer(
            iris_request(IRIS_ROWS), timeout=5
        )
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    fresh.close()

    answer = slow.result()  # the in-flight call finished within the grace period
    out = answer.outputs[0]
    raw = np.frombuffer(answer.raw_output_contents[0], dtype=np.dtype(out.datatype.lower()))
    assert raw.tolist() == IRIS_CLASSES
    channel.close()
    while box.running() and time.monotonic() - started < 35:
        time.sleep(0.1)
    took = time.monotonic() - started
    state = box.state()
    assert not state.get("Running"), f"still running {took:.1f} s after SIGTERM"
    assert state["ExitCode"] == 0, (state, box.logs())
    assert took < 25, f"exited after {took:.1f} s: more than the grace period"
