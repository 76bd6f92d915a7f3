"""Google Vertex AI backend, on the `google.cloud.aiplatform_v1` GAPIC clients.

Mapping (research/vertex.md section 2):

- An endpoint is a Vertex Endpoint whose ID is the endpoint name, labelled
  `managed-by=endpointkit`; endpoints without that label are never read or changed.
- A version is a Model Registry version of the Model whose ID is the endpoint name (the first
  version creates the Model, later ones upload with `parent_model`; the version alias is the
  version name; labels carry the version name and spec hash; the version description holds the
  VersionSpec as JSON) plus a DeployedModel whose display name is the version name. Traffic
  splits map version names to deployed-model IDs; `"0"` stands for the model being deployed.
- A local model directory (or file:// URI) is uploaded to `staging_bucket` in GCS first, as the
  Vertex SDK does; gs:// URIs are used as they are.
- History lives in one JSON-lines object per endpoint in the staging bucket
  (`<prefix>endpointkit/history/<project>/<location>/<endpoint>.jsonl`), written with GCS
  generation preconditions. Vertex has no history API, endpoint labels hold 64 short values, and
  Model Registry entries disappear with the endpoint; a GCS object is durable, unbounded, survives
  `delete`, and is found from the endpoint name alone. Without a staging bucket, history is
  derived from the live endpoint (create and deploy times only).

Long-running operations run in a background thread per change; while one runs, the endpoint
reports Creating/Updating/Deleting (Vertex itself has no endpoint status), and `wait` blocks on
it with the caller's timeout, reporting progress. A failed deploy removes the Model version it
uploaded, leaves the split untouched, records a "failed" event and reports the operation's
error with the container's last error lines from Cloud Logging and a link to the logs.

Invocation: `invoke` (and so `Endpoint.predict`) posts the raw bytes to `:rawPredict` over plain
HTTPS (the GAPIC REST `raw_predict` cannot parse real raw responses) and reads
`X-Vertex-AI-Deployed-Model-Id` to name the version that answered. `VertexBackend.predict` goes
through the GAPIC `PredictionServiceClient.predict` instead; note that it carries instances as
`google.protobuf.Value`, so **integers come back and reach the model as floats** (and lose
precision above 2**53): use `invoke`/`Endpoint.predict` (raw mode) to keep numbers exact.
Shared public endpoints accept at most 1.5 MB per request (checked before sending) and cannot
route a request to a chosen deployed model, so `version=` raises Unsupported. With
`dedicated_endpoint=True` (VertexDedicatedBackend) endpoints get their own DNS name, Models carry
`invoke_route_prefix="/*"`, requests (up to 10 MB) go to the Invoke API, and `version=` pins a
deployed model through `.../deployedModels/{id}/invoke/...`.

Settings: `project`, `location` (default us-central1), `credentials` (None: Application Default
Credentials; "anonymous"; a path to a service-account key file; or a Credentials object),
`api_endpoint` and `transport` ("grpc" or "rest"; rest when api_endpoint is plain http://; a
loopback "127.0.0.1:PORT" with grpc and anonymous credentials is a plaintext gRPC emulator, whose
rawPredict goes over the RawPredict RPC, and which needs `storage_endpoint`/`logging_endpoint`),
`staging_bucket` (gs://bucket[/prefix]), `serving_image` (the endpointkit serving image in your
Artifact Registry), `machine_type`, `service_account`, `deployment_timeout_s`,
`startup_probe` / `health_probe` (mappings of period_seconds, timeout_seconds,
failure_threshold, success_threshold, initial_delay_seconds; HTTP GET on the health route;
defaults that a version's `health` overrides, see `container_health`),
`dedicated_endpoint` (bool), `storage_endpoint`/`logging_endpoint` (default: Google's, or
`api_endpoint` when it is a local http:// emulator), `lro_timeout_s`. Environment fallbacks:
GOOGLE_CLOUD_PROJECT, GOOGLE_CLOUD_REGION/CLOUD_ML_REGION, ENDPOINTKIT_VERTEX_STAGING_BUCKET,
ENDPOINTKIT_VERTEX_SERVING_IMAGE.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from endpointkit.adapters.base import Backend, Capability, ProgressCallback
from endpointkit.errors import (
    AlreadyExists,
    Conflict,
    DeploymentFailed,
    EndpointKitError,
    ModelError,
    NotFound,
    NotReady,
    PermissionDenied,
    QuotaExceeded,
    Throttled,
    Timeout,
    Unavailable,
    Unsupported,
    ValidationError,
)
from endpointkit.invocation import JSON, InvokeRequest, InvokeResult, Prediction, StreamResult
from endpointkit.retry import control_plane
from endpointkit.spec import (
    Autoscaling,
    EndpointState,
    Event,
    Scaling,
    Status,
    TrafficSplit,
    VersionSpec,
    VersionState,
)

__all__ = ["DEFAULT_SERVING_IMAGE", "VertexBackend", "VertexDedicatedBackend"]

T = TypeVar("T")

#: Placeholder: push the endpointkit serving image to Artifact Registry in the Model's region and
#: set `serving_image` (or ENDPOINTKIT_VERTEX_SERVING_IMAGE) to it.
DEFAULT_SERVING_IMAGE = "us-docker.pkg.dev/YOUR_PROJECT/endpointkit/serving:latest"
DEFAULT_LOCATION = "us-central1"
DEFAULT_MACHINE_TYPE = "n1-standard-2"  # Vertex's own default for a DeployedModel
SHARED_ENDPOINT_MAX_BYTES = 1_572_864  # 1.5 MB on shared public endpoints
MANAGED_BY = ("managed-by", "endpointkit")
ENDPOINT_LABEL = "endpointkit-endpoint"
VERSION_LABEL = "endpointkit-version"
HASH_LABEL = "endpointkit-hash"
CONTAINER_PORT = 8080
PREDICT_ROUTE = "/predict"  # endpointkit.serving's AIP_PREDICT_ROUTE default
HEALTH_ROUTE = "/health"  # endpointkit.serving's AIP_HEALTH_ROUTE default
CPU_METRIC = "aiplatform.googleapis.com/prediction/online/cpu/utilization"
REQUEST_METRIC = "aiplatform.googleapis.com/prediction/online/request_count"
DEPLOYED_MODEL_HEADER = "X-Vertex-AI-Deployed-Model-Id"
VERSION_HEADER = "x-endpointkit-version"  # set by endpointkit.serving
DEDICATED_ENDPOINT_MAX_BYTES = 10 * 1024 * 1024
_TARGET_HINT = (
    "Vertex AI routes every request on a shared public endpoint by the traffic split and offers "
    "no way to pin a deployed model (googleapis/python-aiplatform#827). Invoke without version=, "
    "give the version 100% of traffic, or deploy it to its own endpoint."
)

_STREAM_HINT = (
    "Vertex AI streams responses only from dedicated public and Private Service Connect "
    "endpoints, not from shared public ones. Create the endpoint with dedicated_endpoint=True, "
    "or use invoke() for the whole answer at once."
)


@dataclass
class _Pending:
    """A change running in the background: the status to report and how far it got."""

    status: Status
    action: str
    future: concurrent.futures.Future[None]
    step: str = ""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _status_name(exc: Any) -> str:
    """The canonical status (e.g. FAILED_PRECONDITION) of a google.api_core exception."""
    grpc_code = getattr(exc, "grpc_status_code", None)
    if grpc_code is not None and getattr(grpc_code, "name", None):
        return str(grpc_code.name)
    response = getattr(exc, "response", None)
    with contextlib.suppress(Exception):
        status = response.json()["error"]["status"]  # type: ignore[union-attr]
        if status:
            return str(status)
    return type(exc).__name__


class VertexBackend(Backend):
    """Vertex AI endpoints through the aiplatform_v1 GAPIC clients (see the module docstring)."""

    name: ClassVar[str] = "vertex"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.AUTOSCALING, Capability.ACCELERATORS, Capability.SCALING}
    )
    max_payload_bytes: ClassVar[int | None] = SHARED_ENDPOINT_MAX_BYTES

    def __new__(cls, *args: Any, **settings: Any) -> VertexBackend:
        # The capabilities differ with the endpoint type, and they are a class attribute.
        if cls is VertexBackend and settings.get("dedicated_endpoint"):
            cls = VertexDedicatedBackend
        return super().__new__(cls)

    def __init__(
        self,
        *,
        project: str | None = None,
        location: str | None = None,
        credentials: Any = None,
        api_endpoint: str | None = None,
        transport: str | None = None,
        staging_bucket: str | None = None,
        serving_image: str | None = None,
        machine_type: str = DEFAULT_MACHINE_TYPE,
        service_account: str | None = None,
        deployment_timeout_s: int | None = None,
        startup_probe: Mapping[str, int] | None = None,
        health_probe: Mapping[str, int] | None = None,
        storage_endpoint: str | None = None,
        logging_endpoint: str | None = None,
        lro_timeout_s: float = 7200.0,
        call_timeout_s: float = 120.0,
        retry_attempts: int = 6,
        dedicated_endpoint: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.dedicated_endpoint = dedicated_endpoint
        self._endpoint_overridden = api_endpoint is not None
        self._dns: dict[str, str] = {}  # endpoint -> dedicated endpoint DNS ("" when shared)
        self.location = (
            location
            or os.environ.get("GOOGLE_CLOUD_REGION")
            or (os.environ.get("CLOUD_ML_REGION") or DEFAULT_LOCATION)
        )
        self._project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or None
        self._credentials_setting = credentials
        self._credentials: Any = None
        host = api_endpoint or f"{self.location}-aiplatform.googleapis.com"
        self.api_endpoint = host
        self._rest_base = (host if "://" in host else f"https://{host}").rstrip("/")
        local = host.startswith("http://")
        self.transport = transport or ("rest" if local else "grpc")
        if self.transport not in ("grpc", "rest"):
            raise ValidationError(
                f"transport {transport!r} is not one of 'grpc', 'rest'.", backend=self.name
            )
        if local and self.transport != "rest":
            raise ValidationError(
                f"api_endpoint {host!r} is plain HTTP, which only the rest transport speaks.",
                hint="Set transport='rest' (or leave it unset); for a local gRPC emulator give "
                "its address without a scheme ('127.0.0.1:PORT') with credentials='anonymous'.",
                backend=self.name,
            )
        # A loopback host:port under grpc may be a plaintext emulator (see _plaintext_grpc).
        self._loopback_grpc = self.transport == "grpc" and _is_loopback(host)
        self._plaintext: bool | None = None
        emulator = self._rest_base if local else None
        self._storage_base = (
            storage_endpoint or emulator or "https://storage.googleapis.com"
        ).rstrip("/")
        self._logging_base = (
            logging_endpoint or emulator or "https://logging.googleapis.com"
        ).rstrip("/")
        staging = staging_bucket or os.environ.get("ENDPOINTKIT_VERTEX_STAGING_BUCKET") or None
        self._bucket: str | None = None
        self._prefix = ""
        if staging:
            self._bucket, self._prefix = _parse_bucket(staging)
        self.serving_image = (
            serving_image
            or os.environ.get("ENDPOINTKIT_VERTEX_SERVING_IMAGE")
            or DEFAULT_SERVING_IMAGE
        )
        self.machine_type = machine_type
        self.service_account = service_account
        self.deployment_timeout_s = deployment_timeout_s
        self.startup_probe = _probe_settings("startup_probe", startup_probe)
        self.health_probe = _probe_settings("health_probe", health_probe)
        self.lro_timeout_s = lro_timeout_s
        self.call_timeout_s = call_timeout_s
        self._retry_attempts = retry_attempts
        self._sleep = sleep
        self._clients: dict[str, Any] = {}
        self._session: Any = None
        self._lock = threading.RLock()
        self._pending: dict[str, _Pending] = {}
        self._failures: dict[str, str] = {}
        self._versions: dict[tuple[str, str], Any] = {}  # (model, version id) -> Model (immutable)
        self._routes: dict[str, dict[str, str]] = {}  # endpoint -> deployed model id -> version
        self._threads: list[threading.Thread] = []

    # -- settings and clients ---------------------------------------------------------------------

    @property
    def project(self) -> str:
        if self._project is None:
            self._resolve_credentials()
        if not self._project:
            raise ValidationError(
                "no Google Cloud project is set for the vertex backend.",
                hint="Pass project=... (--set project=...) or set GOOGLE_CLOUD_PROJECT.",
                backend=self.name,
            )
        return self._project

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    def _endpoint_path(self, name: str) -> str:
        return f"{self.parent}/endpoints/{name}"

    def _model_path(self, name: str) -> str:
        return f"{self.parent}/models/{name}"

    def _resolve_credentials(self) -> Any:
        if self._credentials is not None:
            return self._credentials
        setting = self._credentials_setting
        try:
            if setting == "anonymous":
                from google.auth import credentials as auth_credentials

                anonymous: Any = auth_credentials.AnonymousCredentials
                self._credentials = anonymous()
            elif isinstance(setting, (str, Path)):
                from google.oauth2 import service_account

                from_file: Any = service_account.Credentials.from_service_account_file
                self._credentials = from_file(
                    str(setting), scopes=["https://www.googleapis.com/auth/cloud-platform"]
                )
            elif setting is not None:
                self._credentials = setting
            else:
                import google.auth

                creds, project = google.auth.default(
                    scopes=["https://www.googleapis.com/auth/cloud-platform"]
                )
                self._credentials = creds
                self._project = self._project or project
        except ImportError as exc:
            raise self._missing(exc) from exc
        except Exception as exc:  # google.auth.exceptions.* (no credentials, bad key file)
            raise PermissionDenied(
                f"cannot load Google credentials for the vertex backend: {exc}",
                hint="Run 'gcloud auth application-default login', set "
                "GOOGLE_APPLICATION_CREDENTIALS, or pass credentials=<key file>.",
                backend=self.name,
            ) from exc
        return self._credentials

    def _missing(self, exc: ImportError) -> EndpointKitError:
        from endpointkit.errors import MissingDependency

        return MissingDependency(
            f"the vertex backend needs google-cloud-aiplatform ({exc.name} is missing).",
            hint="pip install 'endpointkit[vertex]'",
            backend=self.name,
        )

    def _client(self, kind: str) -> Any:
        with self._lock:
            client = self._clients.get(kind)
            if client is not None:
                return client
            try:
                # Only the GAPIC layer: the high-level google.cloud.aiplatform costs ~1.5 s.
                from google.api_core.client_options import ClientOptions
                from google.cloud import aiplatform_v1
            except ImportError as exc:
                raise self._missing(exc) from exc
            cls: Any = {
                "endpoints": aiplatform_v1.EndpointServiceClient,
                "models": aiplatform_v1.ModelServiceClient,
                "prediction": aiplatform_v1.PredictionServiceClient,
            }[kind]
            if self._plaintext_grpc():
                import grpc

                channel = grpc.insecure_channel(
                    self.api_endpoint,
                    options=[  # as the GAPIC transport's own channel: no size limits
                        ("grpc.max_send_message_length", -1),
                        ("grpc.max_receive_message_length", -1),
                    ],
                )
                client = cls(transport=cls.get_transport_class("grpc")(channel=channel))
            else:
                client = cls(
                    credentials=self._resolve_credentials(),
                    transport=self.transport,
                    client_options=ClientOptions(api_endpoint=self.api_endpoint),
                )
            self._clients[kind] = client
            return client

    def _plaintext_grpc(self) -> bool:
        """Whether to speak gRPC without TLS: only to a loopback host:port (a local emulator)
        with anonymous credentials, so a real endpoint or real credentials never go plaintext."""
        if self._plaintext is None:
            anonymous = False
            if self._loopback_grpc:
                credentials = self._resolve_credentials()  # MissingDependency without google
                from google.auth.credentials import AnonymousCredentials

                anonymous = isinstance(credentials, AnonymousCredentials)
            self._plaintext = anonymous
        return self._plaintext

    def _http(self) -> Any:
        with self._lock:
            if self._session is None:
                credentials = self._resolve_credentials()
                try:
                    import requests
                    from google.auth.credentials import AnonymousCredentials
                    from google.auth.transport.requests import AuthorizedSession
                except ImportError as exc:
                    raise self._missing(exc) from exc
                if isinstance(credentials, AnonymousCredentials):
                    self._session = requests.Session()
                else:
                    authorized: Any = AuthorizedSession
                    self._session = authorized(credentials)
            return self._session

    @staticmethod
    def _types() -> Any:
        from google.cloud import aiplatform_v1

        return aiplatform_v1

    def close(self) -> None:
        """Wait for running changes, then close the clients and the HTTP session."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join()
        with self._lock:
            for client in self._clients.values():
                with contextlib.suppress(Exception):
                    client.transport.close()
            self._clients.clear()
            if self._session is not None:
                self._session.close()
                self._session = None

    # -- the one error boundary -------------------------------------------------------------------

    @contextlib.contextmanager
    def _api(
        self, operation: str, endpoint: str | None = None, version: str | None = None
    ) -> Iterator[None]:
        """Translate google.api_core / transport exceptions into endpointkit errors."""
        try:
            from google.api_core import exceptions as gexc
        except ImportError as exc:
            raise self._missing(exc) from exc
        context = {"backend": self.name, "operation": operation, "endpoint": endpoint}
        try:
            yield
        except EndpointKitError as exc:
            raise exc.with_context(**context, version=version) from None
        except gexc.GoogleAPICallError as exc:
            raise self._map_api_error(exc, operation, endpoint, version) from exc
        except gexc.RetryError as exc:
            raise Timeout(
                f"{operation} on {endpoint!r} ({self.name}) did not finish: {exc}.",
                version=version,
                **context,
            ) from exc
        except concurrent.futures.TimeoutError as exc:
            raise Timeout(
                f"{operation} on {endpoint!r} ({self.name}) did not finish within "
                f"{self.lro_timeout_s:g} s.",
                hint="Raise lro_timeout_s; the operation keeps running on Vertex AI.",
                version=version,
                **context,
            ) from exc
        except OSError as exc:  # requests' ConnectionError subclasses OSError
            raise Unavailable(
                f"cannot reach Vertex AI at {self._rest_base} for {operation}: {exc}.",
                hint="Check the network and api_endpoint; the call was retried.",
                version=version,
                **context,
            ) from exc

    def _map_api_error(
        self, exc: Any, operation: str, endpoint: str | None, version: str | None
    ) -> EndpointKitError:
        status = _status_name(exc)
        message = str(getattr(exc, "message", "") or exc)
        code = int(getattr(exc, "code", 0) or 0)
        where = f"{operation} on endpoint {endpoint!r}" if endpoint else operation
        if version:
            where += f" (version {version!r})"
        text = f"Vertex AI refused {where}: {message}"
        kwargs: dict[str, Any] = {
            "backend": self.name,
            "operation": operation,
            "endpoint": endpoint,
            "version": version,
            "provider_code": status,
        }
        if status in ("NOT_FOUND", "NotFound") or code == 404:
            return NotFound(
                text, hint="Check the name with 'endpointkit list --backend vertex'.", **kwargs
            )
        if status in ("ALREADY_EXISTS", "AlreadyExists"):
            return AlreadyExists(text, **kwargs)
        if (
            status in ("ABORTED", "Aborted", "FAILED_PRECONDITION", "FailedPrecondition")
            or code == 409
        ):
            return Conflict(text, **kwargs)
        if status in (
            "PERMISSION_DENIED",
            "UNAUTHENTICATED",
            "Forbidden",
            "Unauthorized",
        ) or code in (
            401,
            403,
        ):
            return PermissionDenied(
                text,
                hint="Grant the caller roles/aiplatform.user (and storage access to the staging "
                "bucket), or check the credentials.",
                **kwargs,
            )
        if status in ("RESOURCE_EXHAUSTED", "TooManyRequests", "ResourceExhausted") or code == 429:
            lowered = message.lower()
            if (
                "exceed quota limits" in lowered
                or "serving_" in lowered
                or "quota metrics" in lowered
            ):
                return QuotaExceeded(
                    text,
                    hint="Request a higher quota in the Cloud console (IAM & Admin > Quotas) or "
                    "use a smaller machine or fewer replicas.",
                    **kwargs,
                )
            return Throttled(text, **kwargs)
        if status in ("UNAVAILABLE", "ServiceUnavailable") or code == 503:
            return Unavailable(
                text, hint="Vertex AI is temporarily unavailable; retried.", **kwargs
            )
        if status in ("DEADLINE_EXCEEDED", "DeadlineExceeded", "GatewayTimeout") or code == 504:
            return Timeout(text, hint="Retry with a longer timeout.", **kwargs)
        if (
            status in ("INVALID_ARGUMENT", "BadRequest", "InvalidArgument", "OUT_OF_RANGE")
            or code == 400
        ):
            return ValidationError(text, hint="Fix the request; nothing was changed.", **kwargs)
        return EndpointKitError(
            text, hint="Retry later; if it persists, check Vertex AI status.", **kwargs
        )

    def _call(
        self,
        operation: str,
        fn: Callable[[], T],
        *,
        endpoint: str | None = None,
        version: str | None = None,
        recheck: Callable[[], T | None] | None = None,
    ) -> T:
        """Run `fn` under the control-plane retry policy (429/503 only).

        `recheck` makes a non-idempotent call safe to retry: before each retry it looks whether
        the first attempt took effect after all, and returns that instead of calling again.
        """
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and recheck is not None:
                with self._api(operation, endpoint, version):
                    done = recheck()
                if done is not None:
                    return done
            with self._api(operation, endpoint, version):
                return fn()

        policy = control_plane(attempts=self._retry_attempts, sleep=self._sleep)
        return policy(attempt)

    def _wait_operation(
        self, op: Any, operation: str, endpoint: str | None, version: str | None = None
    ) -> Any:
        """Block on a GAPIC long-running operation (its polls retry transient errors)."""
        self._set_step(endpoint, f"{operation}: operation {getattr(op.operation, 'name', '')}")
        with self._api(operation, endpoint, version):
            return op.result(timeout=self.lro_timeout_s)

    # -- reading ----------------------------------------------------------------------------------

    def _fetch(self, name: str, operation: str) -> Any:
        """The raw Endpoint proto, or NotFound (also for endpoints endpointkit did not create)."""
        try:
            endpoint = self._call(
                operation,
                lambda: self._client("endpoints").get_endpoint(
                    name=self._endpoint_path(name), retry=None, timeout=self.call_timeout_s
                ),
                endpoint=name,
            )
        except NotFound:
            raise self.not_found(name, operation) from None
        if dict(endpoint.labels).get(MANAGED_BY[0]) != MANAGED_BY[1]:
            raise NotFound(
                f"endpoint {name!r} exists on Vertex AI ({self.parent}) but endpointkit did not "
                "create it, so it leaves it alone.",
                hint="Choose another name, or manage it with gcloud / the Vertex console.",
                backend=self.name,
                operation=operation,
                endpoint=name,
            )
        return endpoint

    def _model_version(self, model: str, version_id: str, endpoint: str) -> Any:
        key = (model.split("/")[-1], version_id)
        cached = self._versions.get(key)
        if cached is None:
            cached = self._call(
                "get",
                lambda: self._client("models").get_model(
                    name=f"{self._model_path(key[0])}@{version_id}",
                    retry=None,
                    timeout=self.call_timeout_s,
                ),
                endpoint=endpoint,
            )
            self._versions[key] = cached
        return cached

    def _state(self, name: str, endpoint: Any) -> EndpointState:
        ids: dict[str, str] = {}
        versions: list[VersionState] = []
        for deployed in endpoint.deployed_models:
            version_name = deployed.display_name
            ids[deployed.id] = version_name
            spec_hash: str | None = None
            spec: VersionSpec | None = None
            with contextlib.suppress(NotFound):
                model = self._model_version(deployed.model, deployed.model_version_id, name)
                spec_hash = dict(model.labels).get(HASH_LABEL)
                with contextlib.suppress(ValueError):
                    spec = VersionSpec.model_validate_json(model.version_description)
            resources = deployed.dedicated_resources
            versions.append(
                VersionState(
                    name=version_name,
                    spec_hash=spec_hash,
                    spec=spec,
                    replicas=int(resources.min_replica_count) or None,
                    scaling=_live_scaling(resources),
                    created_at=_as_datetime(deployed.create_time),
                    details={
                        "deployed_model_id": deployed.id,
                        "model": deployed.model,
                        "model_version_id": deployed.model_version_id,
                        "machine_type": resources.machine_spec.machine_type,
                    },
                )
            )
        with self._lock:
            self._routes[name] = ids
            self._dns[name] = (
                endpoint.dedicated_endpoint_dns if endpoint.dedicated_endpoint_enabled else ""
            )
        traffic = {ids[k]: int(v) for k, v in dict(endpoint.traffic_split).items() if k in ids}
        split = TrafficSplit(
            {**dict.fromkeys(ids.values(), 0), **traffic} if any(traffic.values()) else {}
        )
        pending = self._pending.get(name)
        failure = self._failures.get(name)
        if pending is not None and not pending.future.done():
            status, raw = (
                pending.status,
                f"{pending.status.value}: {pending.step or pending.action}",
            )
        elif not versions:
            status, raw, failure = self._without_versions(name, failure)
        else:
            status, raw = Status.IN_SERVICE, "Ready"
        return EndpointState(
            name=name,
            backend=self.name,
            status=status,
            raw_status=raw,
            versions=versions,
            traffic=split,
            failure_reason=failure,
            created_at=_as_datetime(endpoint.create_time),
            updated_at=_as_datetime(endpoint.update_time),
            url=f"{self._rest_base}/v1/{self._endpoint_path(name)}:rawPredict",
            details={
                "resource": endpoint.name,
                "deployed_model_ids": {v: k for k, v in ids.items()},
                "labels": dict(endpoint.labels),
                "log_hint": self._logs_url(name),
                "dedicated_endpoint_dns": self._dns[name] or None,
            },
        )

    def _without_versions(self, name: str, failure: str | None) -> tuple[Status, str, str | None]:
        """Status of an endpoint with no DeployedModel: its first deploy failed, or it is still
        running in another process (its history says which; a creation older than
        `lro_timeout_s` is taken as interrupted)."""
        if failure is None and self._bucket is not None:
            with contextlib.suppress(EndpointKitError):
                found = self._read_history(name)
                last = found[0][-1] if found and found[0] else None
                if last is not None and last.kind == "failed":
                    failure = last.message
                elif last is not None and last.kind == "created":
                    age = (_now() - last.time).total_seconds()
                    if age < self.lro_timeout_s:
                        return Status.CREATING, "Creating: first deploy running elsewhere", None
        return (
            Status.FAILED,
            "NoDeployedModel",
            failure or "no version is deployed: its creation failed or was interrupted",
        )

    def get(self, name: str) -> EndpointState:
        return self._state(name, self._fetch(name, "get"))

    def list_endpoints(self) -> list[EndpointState]:
        def fetch() -> list[Any]:
            pager = self._client("endpoints").list_endpoints(
                request={
                    "parent": self.parent,
                    "filter": f'labels.{MANAGED_BY[0]}="{MANAGED_BY[1]}"',
                },
                retry=None,
                timeout=self.call_timeout_s,
            )
            return list(pager)

        endpoints = self._call("list", fetch)
        states = []
        for endpoint in endpoints:
            if dict(endpoint.labels).get(MANAGED_BY[0]) != MANAGED_BY[1]:
                continue
            states.append(self._state(endpoint.name.split("/")[-1], endpoint))
        return sorted(states, key=lambda s: s.name)

    def history(self, name: str) -> list[Event]:
        if self._bucket is not None:
            found = self._read_history(name)
            if found is not None:
                return found[0]
        endpoint = self._fetch(name, "history")  # NotFound if it never existed
        events = [
            Event(
                time=_as_datetime(endpoint.create_time) or _now(),
                endpoint=name,
                kind="created",
                message="endpoint created (derived: no staging bucket for history)",
            )
        ]
        for deployed in sorted(
            endpoint.deployed_models, key=lambda d: _as_datetime(d.create_time) or _now()
        ):
            events.append(
                Event(
                    time=_as_datetime(deployed.create_time) or _now(),
                    endpoint=name,
                    kind="deployed",
                    version=deployed.display_name,
                    message=f"deployed model {deployed.id}",
                )
            )
        return events

    # -- background changes -----------------------------------------------------------------------

    def _start(self, name: str, status: Status, action: str, work: Callable[[], None]) -> None:
        """Run `work` in its own thread: it ends with the change, so nothing idles afterwards,
        and (not a daemon) it lets a change finish if the program exits without waiting."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()

        def target() -> None:
            future.set_running_or_notify_cancel()
            try:
                self._run(name, action, work)
            finally:
                future.set_result(None)

        thread = threading.Thread(target=target, name=f"endpointkit-vertex {action}")
        with self._lock:
            self._failures.pop(name, None)
            self._pending[name] = _Pending(status=status, action=action, future=future)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _run(self, name: str, action: str, work: Callable[[], None]) -> None:
        try:
            work()
        except DeploymentFailed as exc:
            with self._lock:
                self._failures[name] = exc.reason or exc.message
        except EndpointKitError as exc:
            with self._lock:
                self._failures[name] = f"{action} failed: {exc}"
            self._record(name, "failed", version=exc.version, message=self._failures[name])
        except Exception as exc:  # never lose a background failure silently
            with self._lock:
                self._failures[name] = f"{action} failed unexpectedly: {exc!r}"
            self._record(name, "failed", message=self._failures[name])

    def _set_step(self, name: str | None, step: str) -> None:
        pending = self._pending.get(name or "")
        if pending is not None:
            pending.step = step

    def wait(
        self,
        name: str,
        *,
        timeout: float = 1800.0,
        progress: ProgressCallback | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> EndpointState:
        """Wait for this process's running operation (if any) with `timeout`, then as the base.

        Raises Timeout naming the operation still running (it keeps running on Vertex AI) and
        DeploymentFailed with the operation's error and a log pointer if the endpoint failed.
        """
        poll_s, max_poll_s = self.poll_first_s, self.poll_max_s
        deadline = time.monotonic() + timeout
        pending = self._pending.get(name)
        delay = poll_s
        while pending is not None and not pending.future.done():
            if progress is not None:
                with contextlib.suppress(NotFound):
                    progress(self.get(name))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Timeout(
                    f"endpoint {name!r} on {self.name} was still {pending.status} after "
                    f"{timeout:g} s ({pending.step or pending.action}).",
                    last_status=str(pending.status),
                    hint="The operation keeps running on Vertex AI; wait again with a longer "
                    f"--timeout or check 'endpointkit status {name}'.",
                    backend=self.name,
                    operation="wait",
                    endpoint=name,
                )
            concurrent.futures.wait([pending.future], timeout=min(delay, remaining))
            delay = min(delay * 2, max_poll_s)
        remaining = max(deadline - time.monotonic(), 0.0)
        return super().wait(name, timeout=remaining, progress=progress, sleep=sleep, clock=clock)

    # -- mutations --------------------------------------------------------------------------------

    def _create(self, name: str, version: VersionSpec, tags: Mapping[str, str]) -> EndpointState:
        deployed = self._deployed_model(version)  # validates before any change
        artifact = self._stage(name, version)
        types = self._types()
        labels = {**dict(tags), MANAGED_BY[0]: MANAGED_BY[1], ENDPOINT_LABEL: name}
        path = self._endpoint_path(name)

        def existing() -> Any:
            try:
                return self._client("endpoints").get_endpoint(name=path, retry=None)
            except Exception:
                return None

        op = self._call(
            "create",
            lambda: self._client("endpoints").create_endpoint(
                parent=self.parent,
                endpoint=types.Endpoint(
                    display_name=name,
                    labels=labels,
                    dedicated_endpoint_enabled=self.dedicated_endpoint,
                ),
                endpoint_id=name,
                retry=None,
                timeout=self.call_timeout_s,
            ),
            endpoint=name,
            recheck=existing,
        )
        if not isinstance(op, types.Endpoint):
            self._wait_operation(op, "create", name)
        self._record(name, "created", version=version.name, message="endpoint created", fresh=True)

        def work() -> None:
            self._deploy_version(
                name, version, deployed, artifact, TrafficSplit({version.name: 100}), {}
            )

        self._start(name, Status.CREATING, f"create {name} with {version.name}", work)
        return self.get(name)

    def _deploy(self, name: str, version: VersionSpec, traffic: TrafficSplit) -> EndpointState:
        deployed = self._deployed_model(version)
        state = self.get(name)
        ids = dict(state.details["deployed_model_ids"])
        artifact = self._stage(name, version)

        def work() -> None:
            self._deploy_version(
                name, version, deployed, artifact, traffic, ids, before=state.traffic
            )

        self._start(name, Status.UPDATING, f"deploy {version.name}", work)
        return self.get(name)

    def _deploy_version(
        self,
        name: str,
        version: VersionSpec,
        deployed: Any,
        artifact: str,
        traffic: TrafficSplit,
        ids: Mapping[str, str],
        before: TrafficSplit | None = None,
    ) -> None:
        """Upload the Model version, deploy it with the split; undo the upload on failure."""
        started = _now()
        model, uploaded = self._upload(name, version, artifact)
        deployed.model = model
        split = {("0" if v == version.name else ids[v]): p for v, p in traffic.items() if p > 0}
        endpoint_path = self._endpoint_path(name)

        def already_deployed() -> Any:
            current = self._client("endpoints").get_endpoint(name=endpoint_path, retry=None)
            return next(
                (d for d in current.deployed_models if d.display_name == version.name), None
            )

        try:
            op = self._call(
                "deploy",
                lambda: self._client("endpoints").deploy_model(
                    endpoint=endpoint_path,
                    deployed_model=deployed,
                    traffic_split=split,
                    retry=None,
                    timeout=self.call_timeout_s,
                ),
                endpoint=name,
                version=version.name,
                recheck=already_deployed,
            )
            if not hasattr(op, "result"):
                result_id = op.id
            else:
                result = self._wait_operation(op, "deploy", name, version.name)
                result_id = result.deployed_model.id
        except EndpointKitError as exc:
            left = self._undo_upload(name, version, uploaded)
            reason = self._failure_reason(name, exc, started, left)
            self._record(name, "failed", version=version.name, message=reason)
            raise DeploymentFailed(
                f"deploying version {version.name!r} to endpoint {name!r} on Vertex AI failed: "
                f"{reason}",
                reason=reason,
                log_hint=self._logs_url(name),
                backend=self.name,
                operation="deploy",
                endpoint=name,
                version=version.name,
                provider_code=exc.provider_code,
            ) from exc
        self._record(
            name,
            "deployed",
            version=version.name,
            message=f"deployed as deployed model {result_id} with {traffic[version.name]}% of "
            "traffic",
            before=before,
            after=traffic,
        )

    def _failure_reason(
        self, name: str, exc: EndpointKitError, started: datetime, left: str
    ) -> str:
        reason = exc.message.removeprefix("Vertex AI refused ")
        lines = self._container_errors(name, started)
        if lines:
            reason += " Last container errors: " + " | ".join(lines)
        if left:
            reason += f" {left}"
        return reason

    def _undo_upload(self, name: str, version: VersionSpec, uploaded: str | None) -> str:
        """Delete the Model version this deploy uploaded; say what could not be removed."""
        if uploaded is None:
            return ""
        try:
            self._delete_model_version(name, uploaded)
            self._delete_staged(name, version)
        except EndpointKitError as exc:
            return (
                f"The uploaded model version {uploaded} could not be removed ({exc}); "
                "delete it yourself."
            )
        return "The uploaded model version was removed; the traffic split is unchanged."

    def _undeploy(self, name: str, version: str, traffic: TrafficSplit) -> EndpointState:
        state = self.get(name)
        ids = dict(state.details["deployed_model_ids"])
        target = state.version(version)
        assert target is not None  # the base checked it is deployed
        split = {ids[v]: p for v, p in traffic.items() if p > 0 and v != version}

        def work() -> None:
            op = self._call(
                "undeploy",
                lambda: self._client("endpoints").undeploy_model(
                    endpoint=self._endpoint_path(name),
                    deployed_model_id=ids[version],
                    traffic_split=split,
                    retry=None,
                    timeout=self.call_timeout_s,
                ),
                endpoint=name,
                version=version,
            )
            self._wait_operation(op, "undeploy", name, version)
            model = f"{target.details['model']}@{target.details['model_version_id']}"
            self._delete_model_version(name, model)
            if target.spec is not None:
                self._delete_staged(name, target.spec)
            self._record(
                name,
                "undeployed",
                version=version,
                message=f"undeployed deployed model {ids[version]}",
                before=state.traffic,
                after=traffic,
            )

        self._start(name, Status.UPDATING, f"undeploy {version}", work)
        return self.get(name)

    def held_scaling(self, scaling: Scaling) -> Scaling:
        """Vertex AI holds replica counts and metric targets, not cooldowns."""
        if scaling.autoscaling is None:
            return scaling
        auto = Autoscaling(
            target_cpu_utilization=scaling.autoscaling.target_cpu_utilization,
            target_invocations_per_replica=scaling.autoscaling.target_invocations_per_replica,
        )
        return scaling.model_copy(update={"autoscaling": auto})

    def _scale(self, name: str, version: str, scaling: Scaling) -> EndpointState:
        """MutateDeployedModel: replica counts and autoscaling targets change in place (the
        only things Vertex AI lets a live DeployedModel change)."""
        state = self.get(name)
        types = self._types()
        deployed = types.DeployedModel(
            id=state.details["deployed_model_ids"][version],
            dedicated_resources=types.DedicatedResources(
                min_replica_count=scaling.min_replicas,
                max_replica_count=scaling.max_replicas,
                autoscaling_metric_specs=self._metric_specs(scaling.autoscaling),
            ),
        )
        from google.protobuf import field_mask_pb2

        mask = field_mask_pb2.FieldMask(
            paths=[
                "dedicated_resources.min_replica_count",
                "dedicated_resources.max_replica_count",
                "dedicated_resources.autoscaling_metric_specs",
            ]
        )
        live = self.live_scaling(state).get(version)

        def work() -> None:
            op = self._call(
                "scale",
                lambda: self._client("endpoints").mutate_deployed_model(
                    endpoint=self._endpoint_path(name),
                    deployed_model=deployed,
                    update_mask=mask,
                    retry=None,
                    timeout=self.call_timeout_s,
                ),
                endpoint=name,
                version=version,
            )
            self._wait_operation(op, "scale", name, version)
            self._record(
                name,
                "scaled",
                version=version,
                message=f"scaled from {live.describe() if live else 'unknown'} to "
                f"{scaling.describe()} in place (MutateDeployedModel)",
            )

        self._start(name, Status.UPDATING, f"scale {version}", work)
        return self.get(name)

    def _set_traffic(self, name: str, traffic: TrafficSplit) -> EndpointState:
        state = self.get(name)
        ids = dict(state.details["deployed_model_ids"])
        split = {ids[v]: p for v, p in traffic.items() if p > 0}
        self._update_split(name, split)
        with self._lock:
            self._failures.pop(name, None)
        self._record(
            name, "traffic", message="traffic changed", before=state.traffic, after=traffic
        )
        return self.get(name)

    def _update_split(self, name: str, split: Mapping[str, int]) -> Any:
        types = self._types()
        from google.protobuf import field_mask_pb2

        return self._call(
            "set_traffic",
            lambda: self._client("endpoints").update_endpoint(
                endpoint=types.Endpoint(name=self._endpoint_path(name), traffic_split=dict(split)),
                update_mask=field_mask_pb2.FieldMask(paths=["traffic_split"]),
                retry=None,
                timeout=self.call_timeout_s,
            ),
            endpoint=name,
        )

    def delete(self, name: str) -> None:
        endpoint = self._fetch(name, "delete")
        deployed = [(d.id, d.display_name) for d in endpoint.deployed_models]

        def work() -> None:
            if dict(endpoint.traffic_split):
                self._update_split(name, {})
            for deployed_id, version in deployed:
                op = self._call(
                    "delete",
                    partial(self._undeploy_call, name, deployed_id),
                    endpoint=name,
                    version=version,
                )
                self._wait_operation(op, "delete", name, version)
            op = self._call(
                "delete",
                lambda: self._client("endpoints").delete_endpoint(
                    name=self._endpoint_path(name), retry=None, timeout=self.call_timeout_s
                ),
                endpoint=name,
            )
            self._wait_operation(op, "delete", name)
            self._delete_model(name)
            self._delete_staged(name, None)
            with self._lock:
                self._routes.pop(name, None)
            self._record(name, "deleted", message="endpoint deleted")

        self._start(name, Status.DELETING, f"delete {name}", work)

    def _undeploy_call(self, name: str, deployed_id: str) -> Any:
        return self._client("endpoints").undeploy_model(
            endpoint=self._endpoint_path(name),
            deployed_model_id=deployed_id,
            retry=None,
            timeout=self.call_timeout_s,
        )

    def exists(self, name: str) -> bool:
        pending = self._pending.get(name)
        if pending is not None and pending.status is Status.DELETING and not pending.future.done():
            return True
        return super().exists(name)

    def wait_deleted(
        self,
        name: str,
        *,
        timeout: float = 1800.0,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Wait for this process's delete (raising its failure), then as the base."""
        deadline = time.monotonic() + timeout
        pending = self._pending.get(name)
        if pending is not None and pending.status is Status.DELETING:
            concurrent.futures.wait([pending.future], timeout=timeout)
            failure = self._failures.get(name)
            if pending.future.done() and failure:
                raise Conflict(
                    f"deleting endpoint {name!r} on {self.name} stopped: {failure}",
                    hint="Fix the cause and run delete again; it resumes where it stopped.",
                    backend=self.name,
                    operation="delete",
                    endpoint=name,
                )
        super().wait_deleted(
            name, timeout=max(deadline - time.monotonic(), 0.0), sleep=sleep, clock=clock
        )

    # -- model registry ---------------------------------------------------------------------------

    def _deployed_model(self, version: VersionSpec) -> Any:
        """The DeployedModel for `version` (without its model name); ValidationError if invalid."""
        types = self._types()
        res = version.resources
        machine = types.MachineSpec(machine_type=res.machine_type or self.machine_type)
        if res.accelerator_count:
            accelerator = (res.accelerator_type or "").upper()
            try:
                machine.accelerator_type = types.AcceleratorType[accelerator]
            except KeyError:
                known = ", ".join(
                    a.name
                    for a in types.AcceleratorType
                    if a.name != "ACCELERATOR_TYPE_UNSPECIFIED"
                )
                raise ValidationError(
                    f"version {version.name!r}: accelerator_type {res.accelerator_type!r} is not a "
                    "Vertex AI accelerator.",
                    hint=f"Use one of: {known}.",
                    backend=self.name,
                    version=version.name,
                ) from None
            machine.accelerator_count = res.accelerator_count
        resources = types.DedicatedResources(
            machine_spec=machine,
            min_replica_count=res.min_replicas,
            max_replica_count=res.max_replicas or res.min_replicas,
            autoscaling_metric_specs=self._metric_specs(version.autoscaling),
        )
        deployed = types.DeployedModel(display_name=version.name, dedicated_resources=resources)
        if self.service_account:
            deployed.service_account = self.service_account
        return deployed

    def _metric_specs(self, autoscaling: Autoscaling | None) -> list[Any]:
        """Autoscaling targets as Vertex AI metric specs (none: Vertex's default, CPU 60%)."""
        types = self._types()
        metrics = []
        if autoscaling is not None:
            if autoscaling.target_cpu_utilization is not None:
                metrics.append(
                    types.AutoscalingMetricSpec(
                        metric_name=CPU_METRIC, target=autoscaling.target_cpu_utilization
                    )
                )
            if autoscaling.target_invocations_per_replica is not None:
                metrics.append(
                    types.AutoscalingMetricSpec(
                        metric_name=REQUEST_METRIC,
                        target=autoscaling.target_invocations_per_replica,
                    )
                )
        return metrics

    def _upload(self, name: str, version: VersionSpec, artifact: str) -> tuple[str, str | None]:
        """Upload `version` as a Model version; returns (model@version, what this call created).

        A leftover version with the same alias (an interrupted earlier attempt) is reused when
        its content hash matches and removed otherwise.
        """
        types = self._types()
        models = self._client("models")
        model_path = self._model_path(name)
        existing = self._find_alias(name, version.name)
        if existing is not None:
            if dict(existing.labels).get(HASH_LABEL) == version.spec_hash:
                return f"{model_path}@{existing.version_id}", None
            self._delete_model_version(name, f"{model_path}@{existing.version_id}")
        env = {**version.effective_env(), "ENDPOINTKIT_VERSION": version.name}
        container = types.ModelContainerSpec(
            image_uri=version.image or self.serving_image,
            health_route=HEALTH_ROUTE,
            ports=[types.Port(container_port=CONTAINER_PORT)],
            env=[types.EnvVar(name=k, value=v) for k, v in sorted(env.items())],
        )
        if self._is_dedicated(name):
            # Routes every container path (and so per-deployed-model calls); excludes
            # predict_route, and such a Model deploys only to dedicated endpoints.
            container.invoke_route_prefix = "/*"
        else:
            container.predict_route = PREDICT_ROUTE
        startup_probe, health_probe, deployment_timeout_s = container_health(
            version, self.startup_probe, self.health_probe, self.deployment_timeout_s
        )
        if deployment_timeout_s:
            from google.protobuf import duration_pb2

            container.deployment_timeout = duration_pb2.Duration(seconds=deployment_timeout_s)
        # Probes hit the server's own health route (200 only once the model is loaded); a slow
        # model needs a generous startup probe rather than a late first health check.
        for field, settings in (
            ("startup_probe", startup_probe),
            ("health_probe", health_probe),
        ):
            if settings:
                probe = types.Probe(
                    http_get=types.Probe.HttpGetAction(path=HEALTH_ROUTE, port=CONTAINER_PORT),
                    **settings,
                )
                setattr(container, field, probe)
        model = types.Model(
            display_name=name,
            description=f"endpointkit endpoint {name}",
            version_description=version.model_dump_json(),
            version_aliases=[version.name],
            labels={
                MANAGED_BY[0]: MANAGED_BY[1],
                ENDPOINT_LABEL: name,
                VERSION_LABEL: version.name,
                HASH_LABEL: version.spec_hash,
            },
            container_spec=container,
            artifact_uri=artifact,
        )
        has_model = self._model_exists(name)
        request = types.UploadModelRequest(parent=self.parent, model=model)
        if has_model:
            request.parent_model = model_path
        else:
            request.model_id = name

        def uploaded() -> Any:
            found = self._find_alias(name, version.name)
            return None if found is None else ("done", found.version_id)

        op = self._call(
            "deploy",
            lambda: models.upload_model(request=request, retry=None, timeout=self.call_timeout_s),
            endpoint=name,
            version=version.name,
            recheck=uploaded,
        )
        if isinstance(op, tuple):
            version_id = op[1]
        else:
            response = self._wait_operation(op, "upload model", name, version.name)
            version_id = response.model_version_id
        ref = f"{model_path}@{version_id}"
        return ref, ref

    def _model_exists(self, name: str) -> bool:
        try:
            self._call(
                "deploy",
                lambda: self._client("models").get_model(
                    name=self._model_path(name), retry=None, timeout=self.call_timeout_s
                ),
                endpoint=name,
            )
        except NotFound:
            return False
        return True

    def _find_alias(self, name: str, alias: str) -> Any:
        try:
            return self._call(
                "deploy",
                lambda: self._client("models").get_model(
                    name=f"{self._model_path(name)}@{alias}",
                    retry=None,
                    timeout=self.call_timeout_s,
                ),
                endpoint=name,
            )
        except NotFound:
            return None

    def _delete_model_version(self, name: str, ref: str) -> None:
        """Delete one Model version; the `default` alias moves to another version first."""
        models = self._client("models")
        model_path, _, version_id = ref.partition("@")
        try:
            target = self._call(
                "delete model version",
                lambda: models.get_model(name=ref, retry=None, timeout=self.call_timeout_s),
                endpoint=name,
            )
        except NotFound:
            return
        versions = self._call(
            "delete model version",
            lambda: list(
                models.list_model_versions(name=model_path, retry=None, timeout=self.call_timeout_s)
            ),
            endpoint=name,
        )
        others = [v for v in versions if v.version_id != target.version_id]
        if not others:
            op = self._call(
                "delete model",
                lambda: models.delete_model(
                    name=model_path, retry=None, timeout=self.call_timeout_s
                ),
                endpoint=name,
            )
            self._wait_operation(op, "delete model", name)
            return
        if "default" in target.version_aliases:
            newest = max(others, key=lambda v: int(v.version_id))
            self._call(
                "delete model version",
                lambda: models.merge_version_aliases(
                    name=f"{model_path}@{newest.version_id}",
                    version_aliases=["default"],
                    retry=None,
                    timeout=self.call_timeout_s,
                ),
                endpoint=name,
            )
        op = self._call(
            "delete model version",
            lambda: models.delete_model_version(
                name=f"{model_path}@{target.version_id}", retry=None, timeout=self.call_timeout_s
            ),
            endpoint=name,
        )
        self._wait_operation(op, "delete model version", name)
        self._versions.pop((model_path.split("/")[-1], version_id), None)

    def _delete_model(self, name: str) -> None:
        models = self._client("models")
        try:
            op = self._call(
                "delete",
                lambda: models.delete_model(
                    name=self._model_path(name), retry=None, timeout=self.call_timeout_s
                ),
                endpoint=name,
            )
        except NotFound:
            return
        self._wait_operation(op, "delete", name)
        with self._lock:
            for key in [k for k in self._versions if k[0] == name]:
                del self._versions[key]

    # -- artifacts, history and logs (GCS / Cloud Logging JSON APIs) ------------------------------

    def _staging_prefix(self, name: str) -> str:
        return f"{self._prefix}endpointkit/artifacts/{self.project}/{self.location}/{name}/"

    def _history_object(self, name: str) -> str:
        return f"{self._prefix}endpointkit/history/{self.project}/{self.location}/{name}.jsonl"

    def _stage(self, name: str, version: VersionSpec) -> str:
        """The gs:// artifact URI for `version`, uploading a local model directory first."""
        model = version.model
        if model is None:
            return ""
        if model.startswith("gs://"):
            return model
        if model.startswith("s3://"):
            raise ValidationError(
                f"version {version.name!r}: Vertex AI cannot read artifacts from {model!r}.",
                hint="Copy the model to gs:// (or give a local directory and staging_bucket).",
                backend=self.name,
                endpoint=name,
                version=version.name,
            )
        local = Path(model.removeprefix("file://"))
        if not local.is_dir():
            raise ValidationError(
                f"version {version.name!r}: model directory {str(local)!r} does not exist.",
                backend=self.name,
                endpoint=name,
                version=version.name,
            )
        if self._bucket is None:
            raise ValidationError(
                f"version {version.name!r} has a local model directory, which Vertex AI can only "
                "read after it is uploaded to Cloud Storage.",
                hint="Set staging_bucket=gs://BUCKET[/prefix] (--set staging_bucket=...).",
                backend=self.name,
                endpoint=name,
                version=version.name,
            )
        prefix = f"{self._staging_prefix(name)}{version.name}-{version.spec_hash}/"
        for path in sorted(local.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                relative = path.relative_to(local).as_posix()
                self._gcs_upload(
                    prefix + relative, path.read_bytes(), operation="deploy", endpoint=name
                )
        return f"gs://{self._bucket}/{prefix}".rstrip("/")

    def _delete_staged(self, name: str, version: VersionSpec | None) -> None:
        if self._bucket is None:
            return
        prefix = self._staging_prefix(name)
        if version is not None:
            prefix += f"{version.name}-{version.spec_hash}/"
        for obj in self._gcs_list(prefix, endpoint=name):
            with contextlib.suppress(NotFound):
                self._gcs_delete(obj, endpoint=name)

    def _gcs_request(
        self, method: str, url: str, operation: str, endpoint: str | None, **kwargs: Any
    ) -> Any:
        def send() -> Any:
            response = self._http().request(method, url, timeout=self.call_timeout_s, **kwargs)
            if response.status_code >= 400 and response.status_code != 412:
                raise self._http_error(response, operation, endpoint, what="Cloud Storage")
            return response

        return self._call(operation, send, endpoint=endpoint)

    def _gcs_upload(
        self,
        obj: str,
        data: bytes,
        *,
        operation: str,
        endpoint: str | None,
        if_generation: int | None = None,
    ) -> bool:
        params: dict[str, Any] = {"uploadType": "media", "name": obj}
        if if_generation is not None:
            params["ifGenerationMatch"] = str(if_generation)
        response = self._gcs_request(
            "POST",
            f"{self._storage_base}/upload/storage/v1/b/{self._bucket}/o",
            operation,
            endpoint,
            params=params,
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return bool(response.status_code != 412)

    def _gcs_read(self, obj: str, endpoint: str) -> tuple[bytes, int] | None:
        try:
            response = self._gcs_request(
                "GET",
                f"{self._storage_base}/storage/v1/b/{self._bucket}/o/{quote(obj, safe='')}",
                "history",
                endpoint,
                params={"alt": "media"},
            )
        except NotFound:
            return None
        return response.content, int(response.headers.get("x-goog-generation") or 0)

    def _gcs_list(self, prefix: str, *, endpoint: str | None) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            params = {"prefix": prefix, **({"pageToken": token} if token else {})}
            response = self._gcs_request(
                "GET",
                f"{self._storage_base}/storage/v1/b/{self._bucket}/o",
                "delete",
                endpoint,
                params=params,
            )
            body = response.json()
            names += [item["name"] for item in body.get("items", [])]
            token = body.get("nextPageToken")
            if not token:
                return names

    def _gcs_delete(self, obj: str, *, endpoint: str | None) -> None:
        self._gcs_request(
            "DELETE",
            f"{self._storage_base}/storage/v1/b/{self._bucket}/o/{quote(obj, safe='')}",
            "delete",
            endpoint,
        )

    def _read_history(self, name: str) -> tuple[list[Event], int] | None:
        found = self._gcs_read(self._history_object(name), name)
        if found is None:
            return None
        data, generation = found
        events = [Event.model_validate_json(line) for line in data.splitlines() if line.strip()]
        return events, generation

    def _record(
        self,
        name: str,
        kind: Any,
        *,
        version: str | None = None,
        message: str = "",
        before: TrafficSplit | None = None,
        after: TrafficSplit | None = None,
        fresh: bool = False,
    ) -> None:
        """Append one event to the endpoint's history object (a no-op without a bucket)."""
        if self._bucket is None:
            return
        event = Event(
            time=_now(),
            endpoint=name,
            kind=kind,
            version=version,
            message=message,
            traffic_before=dict(before.root) if before is not None else None,
            traffic_after=dict(after.root) if after is not None else None,
        )
        line = event.model_dump_json().encode() + b"\n"
        obj = self._history_object(name)
        for _ in range(10):  # optimistic concurrency on the object's generation
            current = self._gcs_read(obj, name)
            generation = current[1] if current else 0
            data = line if fresh or current is None else current[0] + line
            if self._gcs_upload(
                obj, data, operation="history", endpoint=name, if_generation=generation
            ):
                return
        raise Conflict(
            f"could not append to the history of {name!r}: it kept changing.",
            backend=self.name,
            operation="history",
            endpoint=name,
        )

    def _logs_url(self, name: str) -> str:
        query = (
            'resource.type="aiplatform.googleapis.com/Endpoint"\n'
            f'resource.labels.endpoint_id="{name}"'
        )
        project = self._project or ""
        return (
            f"https://console.cloud.google.com/logs/query;query={quote(query, safe='')}"
            f"?project={project}"
        )

    def _container_errors(self, name: str, since: datetime, limit: int = 3) -> list[str]:
        """The last error lines the endpoint's containers logged since `since` (best effort)."""
        body = {
            "resourceNames": [f"projects/{self.project}"],
            "filter": (
                'resource.type="aiplatform.googleapis.com/Endpoint" AND '
                f'resource.labels.endpoint_id="{name}" AND severity>=ERROR AND '
                f'timestamp>="{_rfc3339(since)}"'
            ),
            "orderBy": "timestamp desc",
            "pageSize": limit,
        }
        try:
            response = self._http().post(
                f"{self._logging_base}/v2/entries:list", json=body, timeout=30
            )
            entries = response.json().get("entries", []) if response.status_code == 200 else []
        except Exception:  # logs are a courtesy: the operation's own error is already in hand
            return []
        lines = []
        for entry in entries:
            payload = entry.get("jsonPayload") or {}
            text = payload.get("error") or payload.get("message") or entry.get("textPayload") or ""
            if text:
                lines.append(str(text).strip().splitlines()[-1][:300])
        return lines

    # -- invocation -------------------------------------------------------------------------------

    def _unsupported(self, capability: Capability, operation: str, endpoint: str) -> Unsupported:
        error = super()._unsupported(capability, operation, endpoint)
        if capability is Capability.TARGET_VERSION:
            error.hint = _TARGET_HINT
        elif capability is Capability.SHADOW:
            error.hint = (
                "Vertex AI has no traffic mirroring; run the candidate at a small traffic share "
                "(canary) instead, or use the sagemaker, local or mock backend for shadows."
            )
        elif capability is Capability.STREAMING:
            error.hint = _STREAM_HINT
        return error

    def _invoke(self, request: InvokeRequest) -> InvokeResult:
        name, body, content_type, accept = (
            request.endpoint,
            request.body,
            request.content_type,
            request.accept,
        )
        version, custom_attributes, timeout = (
            request.version,
            request.custom_attributes,
            request.timeout,
        )
        if custom_attributes is not None:
            raise Unsupported(
                "custom attributes are a SageMaker feature; Vertex AI rawPredict does not pass "
                "them to the container. Nothing was sent.",
                hint="Put the information in the request body instead.",
                backend=self.name,
                operation="invoke",
                endpoint=name,
            )
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        if self._is_dedicated(name):
            url = self._invoke_url(name, version)
        elif version is not None:  # a dedicated backend meeting a shared endpoint
            raise Unsupported(
                f"endpoint {name!r} is a shared public endpoint, which cannot pin version "
                f"{version!r}.",
                hint=_TARGET_HINT,
                backend=self.name,
                operation="invoke",
                endpoint=name,
                version=version,
            )
        else:
            url = f"{self._rest_base}/v1/{self._endpoint_path(name)}:rawPredict"
        with self._api("invoke", name, version):
            if self._plaintext_grpc() and not self._is_dedicated(name):
                response = self._raw_predict_grpc(name, body, content_type, accept, timeout)
            else:
                response = self._http().post(
                    url, data=body, headers=headers, timeout=timeout or self.call_timeout_s
                )
        deployed_id = response.headers.get(DEPLOYED_MODEL_HEADER)
        answered = self._version_for(name, deployed_id) if deployed_id else None
        # The invoke route may not name the deployed model; endpointkit's server names itself.
        answered = answered or version or response.headers.get(VERSION_HEADER)
        if response.status_code >= 400:
            raise self._invoke_error(response, name, answered)
        return InvokeResult(
            body=response.content,
            content_type=response.headers.get("Content-Type", JSON).split(";")[0],
            version=answered,
            headers=dict(response.headers),
        )

    def _invoke_stream(self, request: InvokeRequest) -> StreamResult:
        """Stream from a dedicated endpoint's Invoke API route, read as it arrives.

        Vertex AI streams only on dedicated and Private Service Connect endpoints. Its
        `:streamRawPredict` forwards to the container's predict route, which endpointkit's
        dedicated Models do not have: they set `invoke_route_prefix="/*"`, which excludes
        `predict_route`. So the stream takes the same Invoke API path as `invoke` (and can
        pin a version the same way), with the response body read incrementally.
        """
        name, body, content_type, accept = (
            request.endpoint,
            request.body,
            request.content_type,
            request.accept,
        )
        version, custom_attributes, timeout = (
            request.version,
            request.custom_attributes,
            request.timeout,
        )
        if custom_attributes is not None:
            raise Unsupported(
                "custom attributes are a SageMaker feature; Vertex AI does not pass them to the "
                "container. Nothing was sent.",
                hint="Put the information in the request body instead.",
                backend=self.name,
                operation="invoke_stream",
                endpoint=name,
            )
        if not self._is_dedicated(name):  # a dedicated backend meeting a shared endpoint
            raise Unsupported(
                f"endpoint {name!r} is a shared public endpoint, which Vertex AI cannot stream "
                "from; nothing was sent.",
                hint=_STREAM_HINT,
                backend=self.name,
                operation="invoke_stream",
                endpoint=name,
                version=version,
            )
        url = self._invoke_url(name, version)
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        wait = timeout or self.call_timeout_s
        with self._api("invoke_stream", name, version):
            response = self._http().post(url, data=body, headers=headers, timeout=wait, stream=True)
        deployed_id = response.headers.get(DEPLOYED_MODEL_HEADER)
        answered = self._version_for(name, deployed_id) if deployed_id else None
        answered = answered or version or response.headers.get(VERSION_HEADER)
        if response.status_code >= 400:
            try:
                with self._api("invoke_stream", name, version):
                    error = self._invoke_error(response, name, answered)  # reads the body
            finally:
                response.close()
            error.operation = "invoke_stream"
            raise error
        return StreamResult(
            self._stream_chunks(response, name, answered, wait),
            content_type=response.headers.get("Content-Type", JSON).split(";")[0],
            version=answered,
            headers=dict(response.headers),
            on_close=response.close,
        )

    def _stream_chunks(
        self, response: Any, name: str, version: str | None, wait: float
    ) -> Iterator[bytes]:
        import requests
        from urllib3.exceptions import ReadTimeoutError

        try:
            yield from response.iter_content(chunk_size=None)
        except requests.exceptions.RequestException as exc:
            # Mid-body, requests reports a read timeout as ConnectionError(ReadTimeoutError).
            timed_out = isinstance(exc, requests.exceptions.Timeout) or (
                bool(exc.args) and isinstance(exc.args[0], ReadTimeoutError)
            )
            if not timed_out:
                raise ModelError(
                    f"the model on endpoint {name!r}"
                    + (f" (version {version!r})" if version else "")
                    + f" broke its stream off: {exc}.",
                    hint="The model failed while streaming; see its logs in Cloud Logging.",
                    backend=self.name,
                    operation="invoke_stream",
                    endpoint=name,
                    version=version,
                ) from None
            raise Timeout(
                f"the model on {name!r} sent nothing for {wait:g} s mid-stream.",
                backend=self.name,
                operation="invoke_stream",
                endpoint=name,
                version=version,
            ) from None
        finally:
            response.close()

    def _is_dedicated(self, name: str) -> bool:
        """Whether endpoint `name` is dedicated (its own DNS); the setting for new ones."""
        if name not in self._dns:
            try:
                self.get(name)
            except NotFound:
                return self.dedicated_endpoint
        return bool(self._dns.get(name))

    def _invoke_url(self, name: str, version: str | None) -> str:
        """The Invoke API URL on a dedicated endpoint, pinned to `version`'s deployed model."""
        if self._plaintext_grpc():
            raise Unsupported(
                f"endpoint {name!r} is dedicated: its Invoke API is HTTP only, and the gRPC "
                f"emulator at {self.api_endpoint!r} has no HTTP address. Nothing was sent.",
                hint="Use transport='rest' with the emulator's http:// api_endpoint.",
                backend=self.name,
                operation="invoke",
                endpoint=name,
                version=version,
            )
        dns = self._dns.get(name, "")
        base = self._rest_base if self._endpoint_overridden or not dns else f"https://{dns}"
        url = f"{base}/v1/{self._endpoint_path(name)}"
        if version is not None:
            ids = {v: k for k, v in self._routes.get(name, {}).items()}
            if version not in ids:
                ids = dict(self.get(name).details["deployed_model_ids"])
            if version not in ids:
                raise NotFound(
                    f"version {version!r} is not deployed on endpoint {name!r}.",
                    hint=f"Check 'endpointkit status {name}'.",
                    backend=self.name,
                    operation="invoke",
                    endpoint=name,
                    version=version,
                )
            url += f"/deployedModels/{ids[version]}"
        return url + "/invoke" + PREDICT_ROUTE

    def _raw_predict_grpc(
        self, name: str, body: bytes, content_type: str, accept: str | None, timeout: float | None
    ) -> _HttpAnswer:
        """rawPredict as the RawPredict RPC, answered in the shape of the HTTP response.

        Only for a plaintext gRPC emulator (`_plaintext_grpc`): plain-HTTP rawPredict needs an
        HTTP base URL, which such an endpoint does not have. Over gRPC the body travels in an
        HttpBody as it is, so the REST transport's parsing bug (research/vertex.md 2.6) does not
        apply. Real endpoints keep plain HTTPS on the same host: that path is measured and is
        what the SDK does. The RPC documents X-Vertex-AI-Deployed-Model-Id as a response
        header, which gRPC carries as metadata, so the id is read there (initial, then
        trailing; not measured against the real service). An error status whose metadata names
        a deployed model is the container's own answer: it keeps the HTTP status its gRPC code
        stands for, with the message as its body. HttpBody has no Accept, so only JSON (what
        the container answers by default) can be asked for.
        """
        if accept and accept not in (JSON, "*/*"):
            raise Unsupported(
                f"Accept {accept!r} cannot travel in a gRPC RawPredict call. Nothing was sent.",
                hint="Use transport='rest', or accept JSON.",
                backend=self.name,
                operation="invoke",
                endpoint=name,
            )
        import json

        import grpc
        from google.api import httpbody_pb2
        from google.api_core import exceptions as gexc

        endpoint = self._endpoint_path(name)
        request = self._types().RawPredictRequest(
            endpoint=endpoint,
            http_body=httpbody_pb2.HttpBody(content_type=content_type, data=body),
        )
        stub = self._client("prediction").transport.raw_predict
        try:
            answer, call = stub.with_call(
                request,
                timeout=timeout or self.call_timeout_s,
                metadata=[("x-goog-request-params", f"endpoint={endpoint}")],
            )
        except grpc.RpcError as exc:
            from_grpc_error: Any = gexc.from_grpc_error  # untyped in google.api_core
            error = from_grpc_error(exc)
            headers = _grpc_headers(exc)
            status = int(error.code or 500)
            if DEPLOYED_MODEL_HEADER in headers:  # the container answered with an error
                return _HttpAnswer(status, str(exc.details() or "").encode(), headers)
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise error from exc  # Timeout, by the usual mapping
            envelope = {
                "error": {"code": status, "message": error.message, "status": exc.code().name}
            }
            return _HttpAnswer(status, json.dumps(envelope).encode(), headers)
        headers = {**_grpc_headers(call), "Content-Type": answer.content_type or JSON}
        return _HttpAnswer(200, answer.data, headers)

    def _version_for(self, name: str, deployed_id: str) -> str | None:
        routes = self._routes.get(name, {})
        if deployed_id not in routes:
            with contextlib.suppress(EndpointKitError):
                self.get(name)
            routes = self._routes.get(name, {})
        return routes.get(deployed_id)

    def _invoke_error(self, response: Any, name: str, version: str | None) -> EndpointKitError:
        platform = _google_error(response)
        status = response.status_code
        kwargs: dict[str, Any] = {
            "backend": self.name,
            "operation": "invoke",
            "endpoint": name,
            "version": version,
        }
        if platform is None:  # the container answered: pass its status and body through
            if status == 429:
                return Throttled(f"the model on {name!r} is overloaded (429).", **kwargs)
            if status == 503:
                return Unavailable(f"the model on {name!r} is unavailable (503).", **kwargs)
            return ModelError(
                f"the model on endpoint {name!r}"
                + (f" (version {version!r})" if version else "")
                + f" answered {status}: {response.content[:200].decode('utf-8', 'replace')}",
                status=status,
                body=response.content,
                **kwargs,
            )
        code, message = platform
        kwargs["provider_code"] = code
        text = f"Vertex AI refused the request to {name!r}: {message}"
        if status == 429:
            return Throttled(text, **kwargs)
        if status == 503:
            return Unavailable(text, **kwargs)
        if status == 404:
            return self.not_found(name, "invoke")
        if "traffic_split" in message or "traffic split" in message:
            return NotReady(
                text, hint="Give a version traffic ('endpointkit traffic NAME v1=100').", **kwargs
            )
        if "payload size" in message.lower():
            from endpointkit.errors import PayloadTooLarge

            return PayloadTooLarge(text, **kwargs)
        if status in (401, 403):
            return PermissionDenied(text, **kwargs)
        if status == 400:
            return ValidationError(text, **kwargs)
        return EndpointKitError(text, **kwargs)

    def _http_error(
        self, response: Any, operation: str, endpoint: str | None, *, what: str
    ) -> EndpointKitError:
        platform = _google_error(response)
        message = platform[1] if platform else response.text[:300]
        kwargs: dict[str, Any] = {
            "backend": self.name,
            "operation": operation,
            "endpoint": endpoint,
            "provider_code": platform[0] if platform else str(response.status_code),
        }
        text = f"{what} refused {operation}"
        if endpoint:
            text += f" for endpoint {endpoint!r}"
        text += f" ({response.status_code}): {message}"
        status = response.status_code
        if status == 404:
            return NotFound(text, hint="Check staging_bucket exists and is readable.", **kwargs)
        if status == 429:
            return Throttled(text, **kwargs)
        if status == 503:
            return Unavailable(text, **kwargs)
        if status in (401, 403):
            return PermissionDenied(
                text, hint="Grant the caller roles/storage.objectAdmin on the bucket.", **kwargs
            )
        return EndpointKitError(text, **kwargs)

    def predict(
        self,
        name: str,
        instances: list[Any],
        parameters: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Prediction:
        """Predict through the GAPIC client (`:predict`).

        Instances travel as google.protobuf.Value, so integers reach the model as floats: use
        `invoke` / `Endpoint.predict` (rawPredict) when exact numbers matter.
        """
        from google.protobuf import json_format, struct_pb2

        values = [json_format.ParseDict(item, struct_pb2.Value()) for item in instances]
        params = json_format.ParseDict(dict(parameters), struct_pb2.Value()) if parameters else None

        def send() -> Any:
            return self._client("prediction").predict(
                endpoint=self._endpoint_path(name),
                instances=values,
                parameters=params,
                retry=None,
                timeout=timeout or self.call_timeout_s,
            )

        response = self._call("predict", send, endpoint=name)
        payload = json_format.MessageToDict(type(response).pb(response))
        version = self._version_for(name, str(payload.get("deployedModelId", "")))
        return Prediction(predictions=list(payload.get("predictions", [])), version=version)


@dataclass
class _HttpAnswer:
    """A gRPC RawPredict outcome in the shape of the `requests` response `_invoke` reads."""

    status_code: int
    content: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        import json

        return json.loads(self.content)


def _grpc_headers(call: Any) -> dict[str, str]:
    """A gRPC call's metadata (initial, then trailing) as headers; Vertex's under their HTTP
    names."""
    names = {h.lower(): h for h in (DEPLOYED_MODEL_HEADER, "X-Vertex-AI-Endpoint-Id")}
    pairs = [*(call.initial_metadata() or ()), *(call.trailing_metadata() or ())]
    return {names.get(k, k): v for k, v in pairs if isinstance(v, str)}


def _is_loopback(host: str) -> bool:
    """Whether a scheme-less api_endpoint ("127.0.0.1:8080", "localhost:50051") is loopback."""
    if "://" in host:
        return False
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback  # not "127.example.com"
    except ValueError:
        return False


def _google_error(response: Any) -> tuple[str, str] | None:
    """(status, message) if the body is Google's error envelope, else None (a container answer)."""
    try:
        error = response.json().get("error")
    except Exception:
        return None
    if isinstance(error, dict) and isinstance(error.get("status"), str):
        return error["status"], str(error.get("message", ""))
    return None


def _parse_bucket(value: str) -> tuple[str, str]:
    """gs://bucket/prefix -> ("bucket", "prefix/")."""
    rest = value.removeprefix("gs://").strip("/")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValidationError(f"staging_bucket {value!r} must look like gs://BUCKET[/prefix].")
    return bucket, f"{prefix}/" if prefix else ""


def _as_datetime(value: Any) -> datetime | None:
    """proto-plus timestamps arrive as DatetimeWithNanoseconds; unset ones as epoch 0."""
    if isinstance(value, datetime) and value.timestamp() > 0:
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return None


class VertexDedicatedBackend(VertexBackend):
    """Vertex AI on dedicated public endpoints (`dedicated_endpoint=True`).

    Each endpoint gets its own DNS name; Models carry `invoke_route_prefix="/*"`, and requests go
    to the Invoke API, which can pin a deployed model (`version=`). Requests may be up to 10 MB.
    """

    capabilities: ClassVar[frozenset[Capability]] = VertexBackend.capabilities | {
        Capability.TARGET_VERSION,
        Capability.STREAMING,
    }
    max_payload_bytes: ClassVar[int | None] = DEDICATED_ENDPOINT_MAX_BYTES


PROBE_FIELDS = frozenset(
    {
        "period_seconds",
        "timeout_seconds",
        "failure_threshold",
        "success_threshold",
        "initial_delay_seconds",
    }
)


def _probe_settings(name: str, settings: Mapping[str, Any] | None) -> dict[str, int]:
    """Validate a probe setting such as {"period_seconds": 10, "failure_threshold": 60}."""
    if not settings:
        return {}
    unknown = sorted(set(settings) - PROBE_FIELDS)
    if unknown:
        raise ValidationError(
            f"{name} has unknown field(s) {', '.join(unknown)}.",
            hint=f"Use {', '.join(sorted(PROBE_FIELDS))}.",
            backend="vertex",
        )
    probe: dict[str, int] = {}
    for key, value in settings.items():
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if number < 0 or (key != "initial_delay_seconds" and number == 0):
            raise ValidationError(
                f"{name}.{key} must be a positive whole number of seconds or attempts, "
                f"got {value!r}.",
                backend="vertex",
            )
        probe[key] = number
    return probe


#: Period of the startup probe a version's `health.startup_timeout_s` becomes (Vertex's default).
STARTUP_PROBE_PERIOD_S = 10


def container_health(
    version: VersionSpec,
    startup_probe: Mapping[str, int],
    health_probe: Mapping[str, int],
    deployment_timeout_s: int | None,
) -> tuple[dict[str, int], dict[str, int], int | None]:
    """(startup probe, health probe, deployment timeout) for `version`'s container.

    The version's `health` fields override the backend settings, which stay the defaults.
    `startup_timeout_s` becomes a startup probe every STARTUP_PROBE_PERIOD_S whose failure
    threshold covers it (after any initial delay) and raises the deployment timeout to it;
    `period_s`, `timeout_s` and `failure_threshold` go to the health probe.
    """
    startup, health = dict(startup_probe), dict(health_probe)
    check = version.health
    if check is None:
        return startup, health, deployment_timeout_s
    for field, value in (
        ("period_seconds", check.period_s),
        ("timeout_seconds", check.timeout_s),
        ("failure_threshold", check.failure_threshold),
    ):
        if value is not None:
            health[field] = value
    if check.startup_timeout_s is not None:
        delay = startup.get("initial_delay_seconds", 0)
        if delay >= check.startup_timeout_s:  # a delay past the budget would never probe
            del startup["initial_delay_seconds"]
            delay = 0
        startup["period_seconds"] = STARTUP_PROBE_PERIOD_S
        startup["failure_threshold"] = max(
            1, math.ceil((check.startup_timeout_s - delay) / STARTUP_PROBE_PERIOD_S)
        )
        # Never shorter than the backend's setting: the deployment timeout may also cover
        # provisioning and the image pull (the docs do not say), which the budget does not.
        deployment_timeout_s = max(deployment_timeout_s or 0, check.startup_timeout_s)
    return startup, health, deployment_timeout_s


def _live_scaling(resources: Any) -> Scaling | None:
    """A DeployedModel's DedicatedResources as Scaling (None when it has no replicas)."""
    low = int(resources.min_replica_count)
    if low < 1:
        return None
    targets = {m.metric_name: int(m.target) for m in resources.autoscaling_metric_specs}
    auto = None
    if targets.get(CPU_METRIC) or targets.get(REQUEST_METRIC):
        auto = Autoscaling(
            target_cpu_utilization=targets.get(CPU_METRIC) or None,
            target_invocations_per_replica=targets.get(REQUEST_METRIC) or None,
        )
    return Scaling(
        min_replicas=low,
        max_replicas=max(low, int(resources.max_replica_count)),
        autoscaling=auto,
    )
