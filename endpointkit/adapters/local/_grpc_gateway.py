"""The gateway's gRPC port: Vertex AI's `PredictionService` and OIP v2's
`inference.GRPCInferenceService`, each call answered by `Gateway.handle` on its REST twin.

Off unless the daemon gets `--grpc-port` (`LocalBackend(grpc_port=...)`; 0 picks a free port).
The port is in the daemon's `/-/health` and `/-/status` (`endpointkit local status`,
`LocalBackend.gateway_grpc_target()`). A `grpc.aio` server on the daemon's own event loop, so
a call costs what the same REST call costs plus the protobuf translation.

`google.cloud.aiplatform.v1.PredictionService`, the calls GAPIC's `PredictionServiceClient`
makes over its grpc transport: Predict, RawPredict and StreamRawPredict become the REST calls
`POST /v1/{endpoint}:predict|:rawPredict|:streamRawPredict` (the endpoint's split, a pinned
`x-vertex-ai-deployed-model-id`, the rate limit, the bearer token from the call's
`authorization` metadata, all as over REST). Google's REST error shape becomes the gRPC status
its `status` names, with the same message, so the client raises what Vertex makes it raise
(NotFound, FailedPrecondition for a model's 4xx, ...). The answer's deployed model is also in
the initial metadata (`x-vertex-ai-deployed-model-id`).

`inference.GRPCInferenceService` (OIP v2, `tritonclient.grpc`), the model being the endpoint and
the model version a version: ModelInfer becomes `POST /v2/models/{endpoint}[/versions/{v}]/infer`
(`_oip.py`), so it follows the split exactly as REST does, to the chosen version's own OIP REST
route. `raw_input_contents` (what tritonclient sends) travel as Triton's binary extension,
typed `contents` as JSON `data`; outputs are always asked for in binary and answered as
`raw_output_contents`, as Triton answers, so raw tensors are copied, never turned into text.
ModelReady, ModelMetadata and Server{Live,Ready,Metadata} read the REST twins. Errors become
the gRPC status of their HTTP status (as Triton maps them), with the message.

Why translate to each version's REST route rather than proxy to a gRPC port of each version:
every version already serves OIP REST on the port the gateway routes to, so routing, health,
retries on another version, rate limits, shadows and tokens stay the REST path's own, and the
supervisor starts versions as before (no second port per version to allocate, check and
drain). The cost is one protobuf <-> JSON header translation per call.

The Vertex messages come from a hand-written descriptor of the request and response messages
(field numbers as in Google's `aiplatform/v1/prediction_service.proto`) in a private pool:
importing `google.cloud.aiplatform_v1` takes seconds, and the daemon starts in a fraction of
one. OIP's are the serving side's generated ones (`endpointkit/serving/_grpc/`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import orjson

from endpointkit.serving.types import Headers

if TYPE_CHECKING:
    from endpointkit.adapters.local.gateway import Gateway

__all__ = ["GrpcGateway", "GrpcStartError"]

VERTEX_SERVICE = "google.cloud.aiplatform.v1.PredictionService"
OIP_SERVICE = "inference.GRPCInferenceService"
#: OIP datatype -> the InferTensorContents field that carries it (FP16 travels raw only).
TYPED = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
EXTRA_HINT = "the gateway's gRPC port needs grpcio: pip install 'endpointkit[grpc]'"
#: Metadata never passed to Gateway.handle as headers (gRPC's own, or set here).
_SKIP = frozenset({"content-type", "te", "grpc-accept-encoding", "grpc-timeout", "user-agent"})


class GrpcStartError(Exception):
    """The gRPC port cannot be served (grpcio missing, port taken); the message says why."""


def _vertex_messages() -> dict[str, Any]:
    """PredictRequest, PredictResponse and RawPredictRequest (StreamRawPredictRequest has the
    same fields) from a private descriptor pool; HttpBody is googleapis-common-protos' own."""
    from google.api import httpbody_pb2
    from google.protobuf import (
        any_pb2,
        descriptor_pb2,
        descriptor_pool,
        message_factory,
        struct_pb2,
    )

    pool = descriptor_pool.DescriptorPool()
    for module in (any_pb2, struct_pb2, httpbody_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    field = descriptor_pb2.FieldDescriptorProto
    string, message = field.TYPE_STRING, field.TYPE_MESSAGE
    one, many = field.LABEL_OPTIONAL, field.LABEL_REPEATED
    value, body = ".google.protobuf.Value", ".google.api.HttpBody"
    layout = {
        "PredictRequest": [
            ("endpoint", 1, string, one, None),
            ("instances", 2, message, many, value),
            ("parameters", 3, message, one, value),
        ],
        "PredictResponse": [
            ("predictions", 1, message, many, value),
            ("deployed_model_id", 2, string, one, None),
            ("model", 3, string, one, None),
            ("model_display_name", 4, string, one, None),
            ("model_version_id", 5, string, one, None),
            ("metadata", 6, message, one, value),
        ],
        "RawPredictRequest": [
            ("endpoint", 1, string, one, None),
            ("http_body", 2, message, one, body),
        ],
    }
    proto = descriptor_pb2.FileDescriptorProto(
        name="endpointkit/local/aiplatform_v1_prediction.proto",
        package="google.cloud.aiplatform.v1",
        syntax="proto3",
        dependency=["google/protobuf/struct.proto", "google/api/httpbody.proto"],
    )
    for name, fields in layout.items():
        msg = proto.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                msg.field[-1].type_name = type_name
    pool.Add(proto)
    classes: dict[str, Any] = {
        name: message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"google.cloud.aiplatform.v1.{name}")
        )
        for name in layout
    }
    classes["HttpBody"] = httpbody_pb2.HttpBody
    return classes


def _header(headers: Headers, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _google_error(status: int, body: bytes) -> tuple[str, str]:
    """(gRPC status name, message) from Google's REST error shape (or any error body)."""
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
        error = orjson.loads(body)["error"]
        if isinstance(error, dict):
            return str(error.get("status") or "UNKNOWN"), str(error.get("message", ""))
    from endpointkit.adapters.local._google import CANONICAL

    return CANONICAL.get(status, "INTERNAL" if status >= 500 else "UNKNOWN"), body[:4000].decode(
        "utf-8", "replace"
    )


class GrpcGateway:
    """The gateway's gRPC server; `start` binds and serves, `stop` drains and stops."""

    def __init__(self, gateway: Gateway, host: str, port: int) -> None:
        self.gateway = gateway
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._server: Any = None

    async def start(self) -> int:
        """Bind and serve; the port. Raises GrpcStartError if it cannot."""
        try:
            import grpc
        except ImportError as exc:
            raise GrpcStartError(f"{EXTRA_HINT} ({exc})") from exc
        self._grpc = grpc
        server = grpc.aio.server(options=[("grpc.max_send_message_length", -1)])
        server.add_generic_rpc_handlers((self._vertex_handlers(grpc), self._oip_handlers(grpc)))
        host = self.host if ":" not in self.host else f"[{self.host}]"
        address = f"{host}:{self.requested_port}"
        try:
            port: int = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise GrpcStartError(f"cannot serve gRPC on {address}: {exc}") from exc
        if not port:  # older grpcio answers 0 instead of raising
            raise GrpcStartError(f"cannot serve gRPC on {address}: is the port free?")
        await server.start()
        self._server = server
        self.port = port
        return port

    async def stop(self, grace: float = 5.0) -> None:
        """Refuse new calls; those in flight get `grace` seconds."""
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    # -- Vertex AI PredictionService ------------------------------------------------------------

    def _vertex_handlers(self, grpc: Any) -> Any:
        m = _vertex_messages()
        predict_in, predict_out = m["PredictRequest"], m["PredictResponse"]
        raw_in, http_body = m["RawPredictRequest"], m["HttpBody"]
        unary, streaming = grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler

        def ser(cls: Any) -> Callable[[Any], bytes]:
            return cls.SerializeToString  # type: ignore[no-any-return]

        return grpc.method_handlers_generic_handler(
            VERTEX_SERVICE,
            {
                "Predict": unary(
                    self._predict(predict_out),
                    request_deserializer=predict_in.FromString,
                    response_serializer=ser(predict_out),
                ),
                "RawPredict": unary(
                    self._raw_predict(http_body),
                    request_deserializer=raw_in.FromString,
                    response_serializer=ser(http_body),
                ),
                "StreamRawPredict": streaming(
                    self._stream_raw_predict(http_body),
                    request_deserializer=raw_in.FromString,
                    response_serializer=ser(http_body),
                ),
            },
        )

    def _headers(self, context: Any, content_type: bytes | None) -> Headers:
        headers: Headers = [
            (key.encode("latin-1"), value.encode("latin-1"))
            for key, value in context.invocation_metadata() or ()
            if not key.endswith("-bin") and key not in _SKIP and not key.startswith(":")
        ]
        if content_type:
            headers.append((b"content-type", content_type))
        return headers

    async def _abort(self, context: Any, status: int, body: bytes) -> None:
        name, message = _google_error(status, body)
        code = getattr(self._grpc.StatusCode, name, self._grpc.StatusCode.UNKNOWN)
        await context.abort(code, message)

    async def _call(
        self, context: Any, endpoint: str, verb: str, body: bytes, ctype: bytes | None
    ) -> tuple[int, Headers, bytes | AsyncIterator[bytes]]:
        """Gateway.handle for `POST /v1/{endpoint}:{verb}`; aborts the call on an error."""
        if not endpoint.startswith("projects/") or "/endpoints/" not in endpoint:
            await context.abort(
                self._grpc.StatusCode.INVALID_ARGUMENT,
                f"endpoint must be projects/{{project}}/locations/{{location}}/endpoints/"
                f"{{name}}, got {endpoint!r}.",
            )
        path = f"/v1/{endpoint}:{verb}"
        status, headers, answer = await self.gateway.handle(
            "POST", path, b"", self._headers(context, ctype), body
        )
        if status >= 300:
            if not isinstance(answer, bytes):  # pragma: no cover - errors are never streamed
                answer = b"".join([chunk async for chunk in answer])
            await self._abort(context, status, answer)
        deployed = _header(headers, b"x-vertex-ai-deployed-model-id")
        if deployed is not None:
            await context.send_initial_metadata(
                (("x-vertex-ai-deployed-model-id", deployed.decode("latin-1")),)
            )
        return status, headers, answer

    def _predict(self, response_class: Any) -> Callable[[Any, Any], Any]:
        from google.protobuf import json_format

        async def predict(request: Any, context: Any) -> Any:
            message: dict[str, Any] = {
                "instances": [json_format.MessageToDict(v) for v in request.instances]
            }
            if request.HasField("parameters"):
                message["parameters"] = json_format.MessageToDict(request.parameters)
            _, _, answer = await self._call(
                context, request.endpoint, "predict", orjson.dumps(message), b"application/json"
            )
            assert isinstance(answer, bytes)
            return json_format.ParseDict(
                orjson.loads(answer), response_class(), ignore_unknown_fields=True
            )

        return predict

    def _raw_predict(self, http_body: Any) -> Callable[[Any, Any], Any]:
        async def raw_predict(request: Any, context: Any) -> Any:
            body = request.http_body
            _, headers, answer = await self._call(
                context,
                request.endpoint,
                "rawPredict",
                body.data,
                body.content_type.encode("latin-1") or None,
            )
            assert isinstance(answer, bytes)
            ctype = _header(headers, b"content-type") or b"application/json"
            return http_body(content_type=ctype.decode("latin-1"), data=answer)

        return raw_predict

    def _stream_raw_predict(self, http_body: Any) -> Callable[[Any, Any], AsyncIterator[Any]]:
        async def stream_raw_predict(request: Any, context: Any) -> AsyncIterator[Any]:
            body = request.http_body
            _, headers, answer = await self._call(
                context,
                request.endpoint,
                "streamRawPredict",
                body.data,
                body.content_type.encode("latin-1") or None,
            )
            ctype = (_header(headers, b"content-type") or b"application/json").decode("latin-1")
            if isinstance(answer, bytes):
                yield http_body(content_type=ctype, data=answer)
                return
            try:
                async for chunk in answer:
                    yield http_body(content_type=ctype, data=chunk)
            except Exception as exc:  # the version broke the stream: as Vertex, an INTERNAL
                await context.abort(
                    self._grpc.StatusCode.INTERNAL, f"the stream broke: {exc or type(exc).__name__}"
                )
            finally:
                close = getattr(answer, "aclose", None)
                if close is not None:
                    await close()

        return stream_raw_predict

    # -- OIP v2: inference.GRPCInferenceService -------------------------------------------------

    def _oip_handlers(self, grpc: Any) -> Any:
        from endpointkit.serving._grpc import grpc_predict_v2_pb2 as pb

        self._pb = pb
        calls: dict[str, tuple[Callable[[Any, Any], Any], Any, Any]] = {
            "ModelInfer": (self._model_infer, pb.ModelInferRequest, pb.ModelInferResponse),
            "ModelReady": (self._model_ready, pb.ModelReadyRequest, pb.ModelReadyResponse),
            "ModelMetadata": (
                self._model_metadata,
                pb.ModelMetadataRequest,
                pb.ModelMetadataResponse,
            ),
            "ServerLive": (self._server_live, pb.ServerLiveRequest, pb.ServerLiveResponse),
            "ServerReady": (self._server_ready, pb.ServerReadyRequest, pb.ServerReadyResponse),
            "ServerMetadata": (
                self._server_metadata,
                pb.ServerMetadataRequest,
                pb.ServerMetadataResponse,
            ),
        }
        return grpc.method_handlers_generic_handler(
            OIP_SERVICE,
            {
                name: grpc.unary_unary_rpc_method_handler(
                    fn,
                    request_deserializer=request.FromString,
                    response_serializer=response.SerializeToString,
                )
                for name, (fn, request, response) in calls.items()
            },
        )

    async def _oip_call(
        self,
        context: Any,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Headers | None = None,
    ) -> tuple[int, Headers, bytes]:
        """Gateway.handle for an OIP REST path; aborts on an error but a 503 (not ready)."""
        status, out, answer = await self.gateway.handle(
            method, path, b"", self._headers(context, None) + (headers or []), body
        )
        assert isinstance(answer, bytes)  # OIP answers are never streamed
        if status >= 300 and status != 503:
            await self._oip_abort(context, status, answer)
        return status, out, answer

    async def _oip_abort(self, context: Any, status: int, body: bytes) -> None:
        from endpointkit.adapters.local._google import CANONICAL

        name = CANONICAL.get(status) or ("INVALID_ARGUMENT" if status < 500 else "INTERNAL")
        message = body[:4000].decode("utf-8", "replace")
        with contextlib.suppress(orjson.JSONDecodeError, TypeError, KeyError):
            message = str(orjson.loads(body)["error"])
        await context.abort(getattr(self._grpc.StatusCode, name), message)

    @staticmethod
    def _model_path(name: str, version: str, action: str = "") -> str:
        path = f"/v2/models/{name}" + (f"/versions/{version}" if version else "")
        return path + (f"/{action}" if action else "")

    async def _model_infer(self, request: Any, context: Any) -> Any:
        pb = self._pb
        if not request.model_name or "/" in request.model_name + request.model_version:
            await context.abort(
                self._grpc.StatusCode.NOT_FOUND, f"unknown model {request.model_name!r}"
            )
        head, chunks = _infer_json(request)
        headers: Headers = [(b"content-type", b"application/json")]
        if chunks:
            headers = [
                (b"content-type", b"application/octet-stream"),
                (b"inference-header-content-length", str(len(head)).encode()),
            ]
        path = self._model_path(request.model_name, request.model_version, "infer")
        status, out, answer = await self._oip_call(
            context, "POST", path, head + b"".join(chunks), headers
        )
        if status >= 300:
            await self._oip_abort(context, status, answer)
        response = pb.ModelInferResponse(
            model_name=request.model_name,
            model_version=(_header(out, b"x-endpointkit-version") or b"").decode("latin-1"),
        )
        length = _header(out, b"inference-header-content-length")
        split = int(length) if length is not None else len(answer)
        try:
            _fill_infer_response(response, orjson.loads(answer[:split]), answer, split)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            await context.abort(
                self._grpc.StatusCode.INTERNAL, f"the version answered an unreadable infer: {exc}"
            )
        return response

    async def _model_ready(self, request: Any, context: Any) -> Any:
        path = self._model_path(request.name, request.version, "ready")
        status, _, answer = await self.gateway.handle(
            "GET", path, b"", self._headers(context, None), b""
        )
        if status in (401, 403):
            assert isinstance(answer, bytes)
            await self._oip_abort(context, status, answer)
        return self._pb.ModelReadyResponse(ready=status == 200)

    async def _model_metadata(self, request: Any, context: Any) -> Any:
        pb = self._pb
        _, _, answer = await self._oip_call(
            context, "GET", self._model_path(request.name, request.version)
        )
        meta = orjson.loads(answer)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=str(meta.get("name", request.name)),
            versions=[str(v) for v in meta.get("versions", [])],
            platform=str(meta.get("platform", "")),
            inputs=[tensor(**_tensor_meta(t)) for t in meta.get("inputs", [])],
            outputs=[tensor(**_tensor_meta(t)) for t in meta.get("outputs", [])],
        )

    async def _server_live(self, request: Any, context: Any) -> Any:
        status, _, _ = await self._oip_call(context, "GET", "/v2/health/live")
        return self._pb.ServerLiveResponse(live=status == 200)

    async def _server_ready(self, request: Any, context: Any) -> Any:
        status, _, _ = await self._oip_call(context, "GET", "/v2/health/ready")
        return self._pb.ServerReadyResponse(ready=status == 200)

    async def _server_metadata(self, request: Any, context: Any) -> Any:
        _, _, answer = await self._oip_call(context, "GET", "/v2")
        meta = orjson.loads(answer)
        return self._pb.ServerMetadataResponse(
            name=meta["name"], version=meta["version"], extensions=meta["extensions"]
        )


def _parameter(value: Any) -> Any:
    """An InferParameter's value."""
    kind = value.WhichOneof("parameter_choice")
    return getattr(value, kind) if kind else None


def _pack_bytes(items: Any) -> bytes:
    """BYTES elements in Triton's binary form: each one after its 4-byte little-endian length."""
    return b"".join(len(item).to_bytes(4, "little") + item for item in items)


def _infer_json(request: Any) -> tuple[bytes, list[bytes]]:
    """A ModelInferRequest as OIP REST: the JSON header and the binary tensors after it."""
    raw = list(request.raw_input_contents)
    chunks: list[bytes] = []
    inputs = []
    for index, tensor in enumerate(request.inputs):
        params = {k: _parameter(v) for k, v in tensor.parameters.items()}
        item: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        if raw:
            data = raw[index] if index < len(raw) else b""
        elif tensor.datatype == "BYTES":
            data = _pack_bytes(tensor.contents.bytes_contents)
        elif tensor.datatype in TYPED:
            item["data"] = list(getattr(tensor.contents, TYPED[tensor.datatype]))
            data = None
        else:
            data = b""  # FP16 has no typed field: the version says what is missing
        if data is not None:
            params["binary_data_size"] = len(data)
            chunks.append(data)
        if params:
            item["parameters"] = params
        inputs.append(item)
    body: dict[str, Any] = {
        "inputs": inputs,
        "parameters": {
            **{k: _parameter(v) for k, v in request.parameters.items()},
            "binary_data_output": True,
        },
    }
    if request.id:
        body["id"] = request.id
    if request.outputs:
        body["outputs"] = [
            {
                "name": out.name,
                "parameters": {
                    **{k: _parameter(v) for k, v in out.parameters.items()},
                    "binary_data": True,
                },
            }
            for out in request.outputs
        ]
    return orjson.dumps(body), chunks


def _fill_infer_response(response: Any, head: dict[str, Any], body: bytes, offset: int) -> None:
    """Outputs of an OIP REST answer into `response`, as `raw_output_contents` (the answer
    asked for binary outputs; a version that answered JSON gets typed contents instead)."""
    if isinstance(head.get("id"), str):
        response.id = head["id"]
    outputs = head["outputs"]
    binary = all("binary_data_size" in (t.get("parameters") or {}) for t in outputs)
    for tensor in outputs:
        out = response.outputs.add(
            name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
        )
        if binary:
            size = int(tensor["parameters"]["binary_data_size"])
            response.raw_output_contents.append(body[offset : offset + size])
            offset += size
        elif tensor["datatype"] == "BYTES":
            out.contents.bytes_contents.extend(
                x.encode() if isinstance(x, str) else bytes(x) for x in tensor["data"]
            )
        else:
            getattr(out.contents, TYPED[tensor["datatype"]]).extend(tensor["data"])


def _tensor_meta(tensor: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(tensor.get("name", "")),
        "datatype": str(tensor.get("datatype", "")),
        "shape": [int(d) for d in tensor.get("shape", [])],
    }
