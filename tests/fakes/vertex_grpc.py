"""A gRPC front end for the Vertex AI fake: the same state and behaviour as its REST API.

`VertexGrpcFake(fake)` serves google.cloud.aiplatform.v1.EndpointService, ModelService,
PredictionService (Predict, RawPredict) and google.longrunning.Operations (GetOperation) on
127.0.0.1, plaintext, for the GAPIC clients with transport="grpc". It holds no logic of its
own: each call is transcoded into the REST request the GAPIC REST transport would send (the
generated http rules and `google.api_core.rest_helpers.transcode_request`), run through the REST
fake's own dispatcher (`tests.fakes.vertex._Handler._dispatch`: same routes, same fault
injection, same `fake.requests` log), and the answer is turned back into the RPC's response
message, or into a gRPC status with the envelope's code and message, so google.api_core raises
the same exception classes as over REST (research/vertex.md 2.2: FAILED_PRECONDITION stays
FAILED_PRECONDITION here, where REST can only say 400).

RawPredict follows the HttpBody transcoding rule (research 1.4): `http_body.data` is the request
body and `http_body.content_type` its Content-Type. The REST answer's `X-Vertex-AI-Endpoint-Id` /
`X-Vertex-AI-Deployed-Model-Id` headers (documented on the RPC as response headers) go out as
initial metadata, lower-cased as gRPC requires; a container's own error answer becomes a gRPC
status from its HTTP status (Google's HTTP-to-gRPC mapping) with the body as the message and
the same metadata, while the platform's refusals carry no deployed-model id. That is how the
fake reads the documentation; it was not measured against the real service.

Start both front ends on one state with `running_fakes(root)`; the REST one still serves GCS,
Cloud Logging and plain-HTTP rawPredict.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import grpc
from google.api import httpbody_pb2
from google.api_core import rest_helpers
from google.cloud.aiplatform_v1 import types
from google.cloud.aiplatform_v1.services.endpoint_service.transports import rest_base as eps
from google.cloud.aiplatform_v1.services.model_service.transports import rest_base as ms
from google.cloud.aiplatform_v1.services.prediction_service.transports import rest_base as ps
from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from tests.fakes.vertex import _STATUS_BY_HTTP, VertexFake, _Handler

__all__ = ["VertexGrpcFake", "running_fakes"]

V1 = "google.cloud.aiplatform.v1."
_ENDPOINTS = eps._BaseEndpointServiceRestTransport
_MODELS = ms._BaseModelServiceRestTransport
_PREDICTION = ps._BasePredictionServiceRestTransport
#: Response headers the REST fake sets that travel as gRPC metadata (keys must be lower case).
_METADATA_HEADERS = ("x-vertex-ai-endpoint-id", "x-vertex-ai-deployed-model-id")


@dataclass(frozen=True)
class _Rpc:
    """One unary RPC: how to read its request, which REST binding serves it, what it returns."""

    name: str
    request: Callable[[bytes], Any]
    rules: list[dict[str, str]]
    response: Callable[[], Message]


def _rpc(base: Any, method: str, request: Any, response: Any) -> _Rpc:
    """`request`/`response`: proto-plus or protobuf classes; `base`: the generated REST base."""
    rules: list[dict[str, str]] = getattr(base, f"_Base{method}")._get_http_options()
    parse = request.deserialize if hasattr(request, "deserialize") else request.FromString
    message = response.pb() if hasattr(response, "pb") else response  # the protobuf class
    return _Rpc(name=method, request=parse, rules=rules, response=message)


def _services() -> dict[str, dict[str, _Rpc]]:
    """Every RPC the endpointkit adapter (and a GAPIC LRO poll) uses, by service."""
    op = operations_pb2.Operation
    return {
        V1 + "EndpointService": {
            "CreateEndpoint": _rpc(_ENDPOINTS, "CreateEndpoint", types.CreateEndpointRequest, op),
            "GetEndpoint": _rpc(
                _ENDPOINTS, "GetEndpoint", types.GetEndpointRequest, types.Endpoint
            ),
            "ListEndpoints": _rpc(
                _ENDPOINTS, "ListEndpoints", types.ListEndpointsRequest, types.ListEndpointsResponse
            ),
            "UpdateEndpoint": _rpc(
                _ENDPOINTS, "UpdateEndpoint", types.UpdateEndpointRequest, types.Endpoint
            ),
            "DeleteEndpoint": _rpc(_ENDPOINTS, "DeleteEndpoint", types.DeleteEndpointRequest, op),
            "DeployModel": _rpc(_ENDPOINTS, "DeployModel", types.DeployModelRequest, op),
            "UndeployModel": _rpc(_ENDPOINTS, "UndeployModel", types.UndeployModelRequest, op),
            "MutateDeployedModel": _rpc(
                _ENDPOINTS, "MutateDeployedModel", types.MutateDeployedModelRequest, op
            ),
        },
        V1 + "ModelService": {
            "UploadModel": _rpc(_MODELS, "UploadModel", types.UploadModelRequest, op),
            "GetModel": _rpc(_MODELS, "GetModel", types.GetModelRequest, types.Model),
            "ListModels": _rpc(
                _MODELS, "ListModels", types.ListModelsRequest, types.ListModelsResponse
            ),
            "ListModelVersions": _rpc(
                _MODELS,
                "ListModelVersions",
                types.ListModelVersionsRequest,
                types.ListModelVersionsResponse,
            ),
            "DeleteModel": _rpc(_MODELS, "DeleteModel", types.DeleteModelRequest, op),
            "DeleteModelVersion": _rpc(
                _MODELS, "DeleteModelVersion", types.DeleteModelVersionRequest, op
            ),
            "MergeVersionAliases": _rpc(
                _MODELS, "MergeVersionAliases", types.MergeVersionAliasesRequest, types.Model
            ),
        },
        V1 + "PredictionService": {
            "Predict": _rpc(_PREDICTION, "Predict", types.PredictRequest, types.PredictResponse),
        },
        "google.longrunning.Operations": {
            # The generated bindings put the /ui/ paths first, as the REST client polls them.
            "GetOperation": _rpc(
                _ENDPOINTS, "GetOperation", operations_pb2.GetOperationRequest, op
            ),
        },
    }


class _Exchange(_Handler):
    """One request through the REST fake's dispatcher, with the answer kept instead of sent."""

    def __init__(
        self, fake: VertexFake, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> None:
        # No socket: set what _dispatch reads, skipping BaseHTTPRequestHandler.__init__.
        self.fake = fake
        self.command = method
        self.path = path
        self.rfile = io.BytesIO(body)
        self.headers = http.client.HTTPMessage()
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.headers[key] = value
        self.status = 0
        self.body = b""
        self.answer_headers: dict[str, str] = {}

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        if self._discard:  # Fault(after=True): the effect happens, its answer is lost
            return
        self.status, self.body = status, body
        self.answer_headers = {k.lower(): v for k, v in (headers or {}).items()}

    def run(self) -> _Exchange:
        self._dispatch(self.command)
        return self


def _grpc_code(status: int, body: bytes) -> tuple[grpc.StatusCode, str]:
    """The gRPC status for a REST error answer: the envelope's own, else from the HTTP status."""
    with contextlib.suppress(ValueError, AttributeError, KeyError, TypeError):
        error = json.loads(body)["error"]
        return grpc.StatusCode[error["status"]], str(error.get("message", ""))
    name = _STATUS_BY_HTTP.get(status) or ("FAILED_PRECONDITION" if status < 500 else "INTERNAL")
    return grpc.StatusCode[name], body.decode("utf-8", "replace")


class VertexGrpcFake:
    """gRPC front end on a running VertexFake's state; `target` is the api_endpoint to use."""

    def __init__(self, fake: VertexFake, *, workers: int = 16) -> None:
        self.fake = fake
        self.workers = workers
        self._server: grpc.Server | None = None
        self._port = 0
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # RPC name -> calls that reached this front end

    @property
    def target(self) -> str:
        if self._server is None:
            raise RuntimeError("the gRPC fake is not started")
        return f"127.0.0.1:{self._port}"

    def start(self) -> VertexGrpcFake:
        server = grpc.server(ThreadPoolExecutor(self.workers, thread_name_prefix="vertex-grpc"))
        for service, rpcs in _services().items():
            handlers = {
                method: grpc.unary_unary_rpc_method_handler(
                    partial_call(self._unary, rpc),
                    request_deserializer=rpc.request,
                    response_serializer=_serialize,
                )
                for method, rpc in rpcs.items()
            }
            if service == V1 + "PredictionService":
                handlers["RawPredict"] = grpc.unary_unary_rpc_method_handler(
                    self._raw_predict,
                    request_deserializer=types.RawPredictRequest.deserialize,
                    response_serializer=_serialize,
                )
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, handlers),)
            )
        self._port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving (calls in flight are cancelled); the REST fake keeps the state."""
        if self._server is not None:
            self._server.stop(grace=None).wait(10)
            self._server = None

    def __enter__(self) -> VertexGrpcFake:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the bridge ------------------------------------------------------------------------------

    def _exchange(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> _Exchange:
        return _Exchange(self.fake, method, path, body, headers).run()

    def _count(self, rpc: str) -> None:
        with self._lock:
            self.calls[rpc] += 1

    def _unary(self, rpc: _Rpc, request: Any, context: grpc.ServicerContext) -> Message:
        self._count(rpc.name)
        try:
            transcoded, body, query = rest_helpers.transcode_request(
                rpc.rules, request, rest_numeric_enums=True
            )
        except ValueError as exc:  # no binding matches, e.g. a malformed resource name
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        path = transcoded["uri"]  # percent-encoded already ('@' -> %40), as REST sends it
        flatten: Any = rest_helpers.flatten_query_params  # untyped in google.api_core
        params = flatten(query, strict=True)
        if params:
            path += "?" + urlencode(params)
        answer = self._exchange(
            transcoded["method"].upper(),
            path,
            (body or "").encode(),
            {"Content-Type": "application/json"},
        )
        if answer.dropped:  # Fault(drop=True): what a broken connection is to a gRPC client
            context.abort(grpc.StatusCode.UNAVAILABLE, "Connection reset (injected by the fake).")
        if answer.status >= 400:
            context.abort(*_grpc_code(answer.status, answer.body))
        message = rpc.response()
        json_format.Parse(answer.body or b"{}", message, ignore_unknown_fields=True)
        return message

    def _raw_predict(
        self, request: types.RawPredictRequest, context: grpc.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        self._count("RawPredict")
        http_body = request.http_body
        answer = self._exchange(
            "POST",
            quote(f"/v1/{request.endpoint}:rawPredict", safe="/:"),
            http_body.data,
            {"Content-Type": http_body.content_type or "application/json"},
        )
        metadata = tuple(
            (key, answer.answer_headers[key])
            for key in _METADATA_HEADERS
            if key in answer.answer_headers
        )
        if metadata:
            context.send_initial_metadata(metadata)
        if answer.status >= 400:
            context.abort(*_grpc_code(answer.status, answer.body))
        return httpbody_pb2.HttpBody(
            content_type=answer.answer_headers.get("content-type", ""), data=answer.body
        )


def partial_call(
    fn: Callable[[_Rpc, Any, grpc.ServicerContext], Message], rpc: _Rpc
) -> Callable[[Any, grpc.ServicerContext], Message]:
    """`fn` with its RPC bound (a typed functools.partial)."""

    def call(request: Any, context: grpc.ServicerContext) -> Message:
        return fn(rpc, request, context)

    return call


def _serialize(message: Message) -> bytes:
    data: bytes = message.SerializeToString()
    return data


@contextlib.contextmanager
def running_fakes(root: Path, **options: Any) -> Iterator[tuple[VertexFake, VertexGrpcFake]]:
    """A VertexFake (REST) and its gRPC front end on one state; both stopped afterwards."""
    with VertexFake(root, **options) as fake, VertexGrpcFake(fake) as front:
        yield fake, front
