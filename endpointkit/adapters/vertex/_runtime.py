"""Invocation: rawPredict and the Invoke API over HTTP (httpx), RawPredict and Predict over
gRPC, and streaming.

`invoke` posts the raw bytes to `:rawPredict` over plain HTTPS (the GAPIC REST `raw_predict`
cannot parse real raw responses, research/vertex.md 2.6) and reads
`X-Vertex-AI-Deployed-Model-Id` to name the version that answered. Dedicated endpoints use the
Invoke API instead, which can pin a deployed model (`.../deployedModels/{id}/invoke/...`) and
stream. `predict` goes through the GAPIC `PredictionServiceClient.predict`, whose instances
travel as google.protobuf.Value: integers come back as floats.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from endpointkit.adapters.vertex._clients import Connection
from endpointkit.adapters.vertex._errors import BACKEND, answer_error
from endpointkit.adapters.vertex._registry import PREDICT_ROUTE
from endpointkit.errors import EndpointKitError, ModelError, NotFound, Timeout, Unsupported
from endpointkit.invocation import JSON, InvokeRequest, InvokeResult, Prediction, StreamResult

__all__ = [
    "STREAM_HINT",
    "TARGET_HINT",
    "Runtime",
]

DEPLOYED_MODEL_HEADER = "X-Vertex-AI-Deployed-Model-Id"
VERSION_HEADER = "x-endpointkit-version"  # set by endpointkit.serving
TARGET_HINT = (
    "Vertex AI routes every request on a shared public endpoint by the traffic split and offers "
    "no way to pin a deployed model (googleapis/python-aiplatform#827). Invoke without version=, "
    "give the version 100% of traffic, or deploy it to its own endpoint."
)
STREAM_HINT = (
    "Vertex AI streams responses only from dedicated public and Private Service Connect "
    "endpoints, not from shared public ones. Create the endpoint with dedicated_endpoint=True, "
    "or use invoke() for the whole answer at once."
)


@dataclass
class _Answer:
    """An HTTP answer's head and body, from httpx or in the shape of one from gRPC."""

    status_code: int
    content: bytes
    headers: dict[str, str]  # as sent: names keep their case

    @classmethod
    def head(cls, response: httpx.Response, content: bytes = b"") -> _Answer:
        encoding = response.headers.encoding
        headers = {k.decode(encoding): v.decode(encoding) for k, v in response.headers.raw}
        return cls(response.status_code, content, headers)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    @property
    def content_type(self) -> str:
        return (self.header("Content-Type") or JSON).split(";")[0]


class Runtime:
    """Sends requests to endpoints; knows which are dedicated and which deployed model is
    which version (`remember`, fed by the backend's `get`, which `refresh` calls)."""

    def __init__(
        self, conn: Connection, *, dedicated: bool, refresh: Callable[[str], object]
    ) -> None:
        self._conn = conn
        self.dedicated = dedicated  # the setting, for endpoints not read yet
        self._refresh = refresh
        self._lock = threading.Lock()
        self._dns: dict[str, str] = {}  # endpoint -> dedicated endpoint DNS ("" when shared)
        self._routes: dict[str, dict[str, str]] = {}  # endpoint -> deployed model id -> version

    def remember(self, name: str, routes: Mapping[str, str], dns: str) -> None:
        with self._lock:
            self._routes[name] = dict(routes)
            self._dns[name] = dns

    def forget(self, name: str) -> None:
        with self._lock:
            self._routes.pop(name, None)

    def is_dedicated(self, name: str) -> bool:
        """Whether endpoint `name` is dedicated (its own DNS); the setting for new ones."""
        if name not in self._dns:
            try:
                self._refresh(name)
            except NotFound:
                return self.dedicated
        return bool(self._dns.get(name))

    # -- invoke -------------------------------------------------------------------------------

    def invoke(self, request: InvokeRequest) -> InvokeResult:
        name, version = request.endpoint, request.version
        if self.is_dedicated(name):
            url = self._invoke_url(name, version)
        elif version is not None:  # a dedicated backend meeting a shared endpoint
            raise Unsupported(
                f"endpoint {name!r} is a shared public endpoint, which cannot pin version "
                f"{version!r}.",
                hint=TARGET_HINT,
                backend=BACKEND,
                operation="invoke",
                endpoint=name,
                version=version,
            )
        else:
            url = f"{self._conn.rest_base}/v1/{self._conn.endpoint_path(name)}:rawPredict"
        with self._conn.errors("invoke", name, version):
            if self._conn.plaintext_grpc() and not self.is_dedicated(name):
                answer = self._raw_predict_grpc(request)
            else:
                response = self._conn.http().post(
                    url,
                    content=request.body,
                    headers=_request_headers(request),
                    timeout=request.timeout or self._conn.call_timeout_s,
                )
                answer = _Answer.head(response, response.content)
        answered = self._answered(name, answer, version)
        if answer.status_code >= 400:
            raise answer_error(
                answer.status_code,
                answer.content,
                operation="invoke",
                endpoint=name,
                version=answered,
            )
        return InvokeResult(
            body=answer.content,
            content_type=answer.content_type,
            version=answered,
            headers=answer.headers,
        )

    def invoke_stream(self, request: InvokeRequest) -> StreamResult:
        """Stream from a dedicated endpoint's Invoke API route, read as it arrives.

        Vertex AI streams only on dedicated and Private Service Connect endpoints. Its
        `:streamRawPredict` forwards to the container's predict route, which endpointkit's
        dedicated Models do not have: they set `invoke_route_prefix="/*"`, which excludes
        `predict_route`. So the stream takes the same Invoke API path as `invoke` (and can
        pin a version the same way), with the response body read incrementally.
        """
        name, version, operation = request.endpoint, request.version, "invoke_stream"
        if not self.is_dedicated(name):  # a dedicated backend meeting a shared endpoint
            raise Unsupported(
                f"endpoint {name!r} is a shared public endpoint, which Vertex AI cannot stream "
                "from; nothing was sent.",
                hint=STREAM_HINT,
                backend=BACKEND,
                operation=operation,
                endpoint=name,
                version=version,
            )
        url = self._invoke_url(name, version)
        wait = request.timeout or self._conn.call_timeout_s
        client = self._conn.http()
        sent = client.build_request(
            "POST", url, content=request.body, headers=_request_headers(request), timeout=wait
        )
        with self._conn.errors(operation, name, version):
            response = client.send(sent, stream=True)
        head = _Answer.head(response)
        answered = self._answered(name, head, version)
        if head.status_code >= 400:
            try:
                with self._conn.errors(operation, name, version):
                    body = response.read()
            finally:
                response.close()
            raise answer_error(
                head.status_code, body, operation=operation, endpoint=name, version=answered
            )
        return StreamResult(
            self._chunks(response, name, answered, wait),
            content_type=head.content_type,
            version=answered,
            headers=head.headers,
            on_close=response.close,
        )

    def _chunks(
        self, response: httpx.Response, name: str, version: str | None, wait: float
    ) -> Iterator[bytes]:
        context: dict[str, Any] = {
            "backend": BACKEND,
            "operation": "invoke_stream",
            "endpoint": name,
            "version": version,
        }
        try:
            yield from response.iter_bytes()
        except httpx.TimeoutException:
            raise Timeout(
                f"the model on {name!r} sent nothing for {wait:g} s mid-stream.", **context
            ) from None
        except httpx.TransportError as exc:
            raise ModelError(
                f"the model on endpoint {name!r}"
                + (f" (version {version!r})" if version else "")
                + f" broke its stream off: {exc}.",
                hint="The model failed while streaming; see its logs in Cloud Logging.",
                **context,
            ) from None
        finally:
            response.close()

    def _answered(self, name: str, answer: _Answer, version: str | None) -> str | None:
        """The version that answered: by its deployed model id, else as asked, else as the
        endpointkit server names itself (the invoke route may not name the deployed model)."""
        deployed_id = answer.header(DEPLOYED_MODEL_HEADER)
        answered = self.version_for(name, deployed_id) if deployed_id else None
        return answered or version or answer.header(VERSION_HEADER)

    def version_for(self, name: str, deployed_id: str) -> str | None:
        """The version deployed as `deployed_id` on `name`, or None."""
        routes = self._routes.get(name, {})
        if deployed_id not in routes:
            with contextlib.suppress(EndpointKitError):
                self._refresh(name)
            routes = self._routes.get(name, {})
        return routes.get(deployed_id)

    def _invoke_url(self, name: str, version: str | None) -> str:
        """The Invoke API URL on a dedicated endpoint, pinned to `version`'s deployed model."""
        if self._conn.plaintext_grpc():
            raise Unsupported(
                f"endpoint {name!r} is dedicated: its Invoke API is HTTP only, and the gRPC "
                f"emulator at {self._conn.api_endpoint!r} has no HTTP address. Nothing was sent.",
                hint="Use transport='rest' with the emulator's http:// api_endpoint.",
                backend=BACKEND,
                operation="invoke",
                endpoint=name,
                version=version,
            )
        dns = self._dns.get(name, "")
        overridden = self._conn.endpoint_overridden or not dns
        base = self._conn.rest_base if overridden else f"https://{dns}"
        url = f"{base}/v1/{self._conn.endpoint_path(name)}"
        if version is not None:
            ids = {v: k for k, v in self._routes.get(name, {}).items()}
            if version not in ids:
                self._refresh(name)
                ids = {v: k for k, v in self._routes.get(name, {}).items()}
            if version not in ids:
                raise NotFound(
                    f"version {version!r} is not deployed on endpoint {name!r}.",
                    hint=f"Check 'endpointkit status {name}'.",
                    backend=BACKEND,
                    operation="invoke",
                    endpoint=name,
                    version=version,
                )
            url += f"/deployedModels/{ids[version]}"
        return url + "/invoke" + PREDICT_ROUTE

    def _raw_predict_grpc(self, request: InvokeRequest) -> _Answer:
        """rawPredict as the RawPredict RPC, answered in the shape of the HTTP response.

        Only for a plaintext gRPC emulator (`Connection.plaintext_grpc`): plain-HTTP rawPredict
        needs an HTTP base URL, which such an endpoint does not have. Over gRPC the body travels
        in an HttpBody as it is, so the REST transport's parsing bug (research/vertex.md 2.6)
        does not apply. Real endpoints keep plain HTTPS on the same host: that path is measured
        and is what the SDK does. The RPC documents X-Vertex-AI-Deployed-Model-Id as a response
        header, which gRPC carries as metadata, so the id is read there (initial, then
        trailing; not measured against the real service). An error status whose metadata names
        a deployed model is the container's own answer: it keeps the HTTP status its gRPC code
        stands for, with the message as its body. HttpBody has no Accept, so only JSON (what
        the container answers by default) can be asked for.
        """
        name, accept = request.endpoint, request.accept
        if accept and accept not in (JSON, "*/*"):
            raise Unsupported(
                f"Accept {accept!r} cannot travel in a gRPC RawPredict call. Nothing was sent.",
                hint="Use transport='rest', or accept JSON.",
                backend=BACKEND,
                operation="invoke",
                endpoint=name,
            )
        import grpc
        from google.api import httpbody_pb2
        from google.api_core import exceptions as gexc

        endpoint = self._conn.endpoint_path(name)
        message = self._conn.types().RawPredictRequest(
            endpoint=endpoint,
            http_body=httpbody_pb2.HttpBody(content_type=request.content_type, data=request.body),
        )
        stub = self._conn.client("prediction").transport.raw_predict
        try:
            answer, call = stub.with_call(
                message,
                timeout=request.timeout or self._conn.call_timeout_s,
                metadata=[("x-goog-request-params", f"endpoint={endpoint}")],
            )
        except grpc.RpcError as exc:
            from_grpc_error: Any = gexc.from_grpc_error  # untyped in google.api_core
            error = from_grpc_error(exc)
            headers = _grpc_headers(exc)
            status = int(error.code or 500)
            if DEPLOYED_MODEL_HEADER in headers:  # the container answered with an error
                return _Answer(status, str(exc.details() or "").encode(), headers)
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise error from exc  # Timeout, by the usual mapping
            envelope = {
                "error": {"code": status, "message": error.message, "status": exc.code().name}
            }
            return _Answer(status, json.dumps(envelope).encode(), headers)
        headers = {**_grpc_headers(call), "Content-Type": answer.content_type or JSON}
        return _Answer(200, answer.data, headers)

    # -- predict ------------------------------------------------------------------------------

    def predict(
        self,
        name: str,
        instances: list[Any],
        parameters: Mapping[str, Any] | None,
        timeout: float | None,
    ) -> Prediction:
        """Predict through the GAPIC client (`:predict`); integers arrive as floats."""
        from google.protobuf import json_format, struct_pb2

        values = [json_format.ParseDict(item, struct_pb2.Value()) for item in instances]
        params = json_format.ParseDict(dict(parameters), struct_pb2.Value()) if parameters else None

        def send() -> Any:
            return self._conn.client("prediction").predict(
                endpoint=self._conn.endpoint_path(name),
                instances=values,
                parameters=params,
                retry=None,
                timeout=timeout or self._conn.call_timeout_s,
            )

        response = self._conn.call("predict", send, endpoint=name)
        payload = json_format.MessageToDict(type(response).pb(response))
        version = self.version_for(name, str(payload.get("deployedModelId", "")))
        return Prediction(predictions=list(payload.get("predictions", [])), version=version)


def _request_headers(request: InvokeRequest) -> dict[str, str]:
    headers = {"Content-Type": request.content_type}
    if request.accept:
        headers["Accept"] = request.accept
    return headers


def _grpc_headers(call: Any) -> dict[str, str]:
    """A gRPC call's metadata (initial, then trailing) as headers; Vertex's under their HTTP
    names."""
    names = {h.lower(): h for h in (DEPLOYED_MODEL_HEADER, "X-Vertex-AI-Endpoint-Id")}
    pairs = [*(call.initial_metadata() or ()), *(call.trailing_metadata() or ())]
    return {names.get(k, k): v for k, v in pairs if isinstance(v, str)}
