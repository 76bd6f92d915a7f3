"""Open Inference Protocol v2 over HTTP on the same port (gRPC: test_oip_grpc.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import IRIS_CLASSES, IRIS_ROWS, Container, Runner, free_port

pytestmark = pytest.mark.container


@pytest.fixture(scope="module")
def oip(image: str, iris_model: Path) -> Iterator[Container]:
    runner = Runner(image)
    port = free_port()
    env = {"ENDPOINTKIT_PORT": str(port), "ENDPOINTKIT_MODEL_NAME": "iris"}
    try:
        yield runner(None, env, {iris_model: "/opt/ml/model"}, port=port,
                     ready="/v2/health/ready")  # fmt: skip
    finally:
        runner.close()


def test_health_and_metadata(oip: Container) -> None:
    assert oip.client.get("/v2/health/live").status_code == 200
    assert oip.client.get("/v2/models/iris/ready").status_code == 200
    meta = oip.client.get("/v2/models/iris").json()
    assert meta["name"] == "iris"
    assert oip.client.get("/v2").status_code == 200


def test_infer(oip: Container) -> None:
    tensor = {"name": "x", "shape": [2, 4], "datatype": "FP64",
              "data": [v for row in IRIS_ROWS for v in row]}  # fmt: skip
    r = oip.client.post("/v2/models/iris/infer", json={"id": "r1", "inputs": [tensor]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "r1"
    assert body["outputs"][0]["data"] == IRIS_CLASSES


def test_unknown_model_is_404(oip: Container) -> None:
    assert oip.client.get("/v2/models/nope/ready").status_code == 404
