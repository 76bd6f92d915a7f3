"""Triton's clients (`tritonclient.http`, `tritonclient.grpc`) against the local gateway, used as
their documentation shows: the model name is the endpoint's, the model version a version's
name; requests follow the endpoint's split."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from tests.conformance.suite import Versions
from tests.local.harness import local_backend

pytestmark = pytest.mark.slow  # real processes and sockets

ROUNDS = 40  # P(one version of a 50/50 split never answers) = 2 * 0.5**40


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    """The module's gateway, serving gRPC on a free port too."""
    with local_backend(tmp_path_factory.mktemp("triton-home"), seed=3, grpc_port=0) as backend:
        yield backend


def http_client(local: LocalBackend) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(url=local.gateway_url().removeprefix("http://"))


def grpc_client(local: LocalBackend) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(url=local.gateway_grpc_target())


def test_http_infer_follows_the_split(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.echo("v2"), traffic={"v1": 50, "v2": 50})
    client = http_client(local)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(ep.name)
    assert client.is_model_ready(ep.name, "v2")
    assert not client.is_model_ready("no-such-endpoint")
    assert client.get_model_metadata(ep.name)["name"] == ep.name
    data = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    seen: Counter[str] = Counter()
    for binary in [True, False] * (ROUNDS // 2):
        tensor = httpclient.InferInput("input-0", list(data.shape), "FP32")
        tensor.set_data_from_numpy(data, binary_data=binary)
        result = client.infer(ep.name, [tensor])
        answer = result.as_numpy("output-0")
        assert answer is not None
        assert len(set(answer.tolist())) == 1
        seen[answer[0].decode() if isinstance(answer[0], bytes) else answer[0]] += 1
    assert set(seen) == {"v1", "v2"}, seen
    tensor = httpclient.InferInput("input-0", [1, 2], "FP32")
    tensor.set_data_from_numpy(data[:1])
    pinned = client.infer(ep.name, [tensor], model_version="v2").as_numpy("output-0")
    assert pinned is not None
    assert pinned.tolist() == [b"v2"]
    with pytest.raises(InferenceServerException, match="nope"):
        client.infer("nope", [tensor])
    with pytest.raises(InferenceServerException, match="v9"):
        client.infer(ep.name, [tensor], model_version="v9")
    with pytest.raises(InferenceServerException, match="no route"):
        client.get_model_repository_index()
    client.close()


def test_grpc_infer_follows_the_split(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.echo("v2"), traffic={"v1": 50, "v2": 50})
    client = grpc_client(local)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(ep.name)
    assert client.is_model_ready(ep.name, "v2")
    assert not client.is_model_ready("no-such-endpoint")
    metadata = client.get_model_metadata(ep.name, as_json=True)
    assert metadata["name"] == ep.name
    assert sorted(metadata["versions"]) == ["v1", "v2"]
    assert client.get_server_metadata().name == "endpointkit-local-gateway"
    data = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    seen: Counter[str] = Counter()
    versions_seen: Counter[str] = Counter()
    for _ in range(ROUNDS):
        tensor = grpcclient.InferInput("input-0", list(data.shape), "FP32")
        tensor.set_data_from_numpy(data)
        result = client.infer(ep.name, [tensor])
        answer = result.as_numpy("output-0")
        assert answer is not None
        assert answer.shape == (2,)
        assert len(set(answer.tolist())) == 1
        seen[answer[0].decode()] += 1
        versions_seen[result.get_response().model_version] += 1
    assert set(seen) == {"v1", "v2"}, seen
    assert versions_seen == seen  # the answer names the version that served it
    tensor = grpcclient.InferInput("input-0", [1, 2], "FP32")
    tensor.set_data_from_numpy(data[:1])
    pinned = client.infer(
        ep.name, [tensor], model_version="v2", outputs=[grpcclient.InferRequestedOutput("output-0")]
    )
    assert pinned.as_numpy("output-0").tolist() == [b"v2"]
    with pytest.raises(InferenceServerException, match="nope") as caught:
        client.infer("nope", [tensor])
    assert caught.value.status() == "StatusCode.NOT_FOUND"
    with pytest.raises(InferenceServerException, match="v9") as caught:
        client.infer(ep.name, [tensor], model_version="v9")
    assert caught.value.status() == "StatusCode.NOT_FOUND"
    with pytest.raises(InferenceServerException, match="missing") as caught:
        client.infer(ep.name, [tensor], outputs=[grpcclient.InferRequestedOutput("missing")])
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
    client.close()
