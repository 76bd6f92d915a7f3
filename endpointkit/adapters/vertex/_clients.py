"""Settings, credentials and clients that every part of the Vertex backend shares.

`Connection` holds them and makes every control-plane call the same way (`call`: the error
table of `_errors` inside the control-plane retry policy). Clients are created on first use:
the GAPIC clients (aiplatform_v1 only: the high-level google.cloud.aiplatform costs ~1.5 s),
one httpx client for the HTTP routes (rawPredict, the Invoke API, Cloud Logging) and one
google-cloud-storage client.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

from endpointkit.adapters.vertex._errors import BACKEND, VERTEX, google_errors
from endpointkit.errors import EndpointKitError, PermissionDenied, ValidationError
from endpointkit.retry import Sleep, control_plane

__all__ = ["Connection", "is_loopback"]

T = TypeVar("T")
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


class Connection:
    """Where and as whom the backend talks to Google, and the clients it talks through."""

    def __init__(
        self,
        *,
        project: str | None,
        location: str,
        credentials: Any,
        api_endpoint: str | None,
        transport: str | None,
        storage_endpoint: str | None,
        logging_endpoint: str | None,
        call_timeout_s: float,
        retry_attempts: int,
        sleep: Sleep,
    ) -> None:
        self.location = location
        self._project = project
        self._credentials_setting = credentials
        self._credentials: Any = None
        self.endpoint_overridden = api_endpoint is not None
        host = api_endpoint or f"{location}-aiplatform.googleapis.com"
        self.api_endpoint = host
        self.rest_base = (host if "://" in host else f"https://{host}").rstrip("/")
        local = host.startswith("http://")
        self.transport = transport or ("rest" if local else "grpc")
        if self.transport not in ("grpc", "rest"):
            raise ValidationError(
                f"transport {transport!r} is not one of 'grpc', 'rest'.", backend=BACKEND
            )
        if local and self.transport != "rest":
            raise ValidationError(
                f"api_endpoint {host!r} is plain HTTP, which only the rest transport speaks.",
                hint="Set transport='rest' (or leave it unset); for a local gRPC emulator give "
                "its address without a scheme ('127.0.0.1:PORT') with credentials='anonymous'.",
                backend=BACKEND,
            )
        # A loopback host:port under grpc may be a plaintext emulator (see plaintext_grpc).
        self._loopback_grpc = self.transport == "grpc" and is_loopback(host)
        self._plaintext: bool | None = None
        emulator = self.rest_base if local else None
        self.storage_base = (
            storage_endpoint or emulator or "https://storage.googleapis.com"
        ).rstrip("/")
        self.logging_base = (
            logging_endpoint or emulator or "https://logging.googleapis.com"
        ).rstrip("/")
        self.call_timeout_s = call_timeout_s
        self._retry_attempts = retry_attempts
        self._sleep = sleep
        self._lock = threading.RLock()
        self._clients: dict[str, Any] = {}
        self._http: httpx.Client | None = None

    # -- names --------------------------------------------------------------------------------

    @property
    def project(self) -> str:
        if self._project is None:
            self.credentials()
        if not self._project:
            raise ValidationError(
                "no Google Cloud project is set for the vertex backend.",
                hint="Pass project=... (--set project=...) or set GOOGLE_CLOUD_PROJECT.",
                backend=BACKEND,
            )
        return self._project

    @property
    def known_project(self) -> str:
        """The project if it is known without loading credentials, else ""."""
        return self._project or ""

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    def endpoint_path(self, name: str) -> str:
        return f"{self.parent}/endpoints/{name}"

    def model_path(self, name: str) -> str:
        return f"{self.parent}/models/{name}"

    # -- credentials and clients --------------------------------------------------------------

    def credentials(self) -> Any:
        """The google-auth credentials of the `credentials` setting (None: ADC)."""
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
                self._credentials = from_file(str(setting), scopes=SCOPES)
            elif setting is not None:
                self._credentials = setting
            else:
                import google.auth

                creds, project = google.auth.default(scopes=SCOPES)
                self._credentials = creds
                self._project = self._project or project
        except ImportError as exc:
            raise missing_dependency(exc) from exc
        except Exception as exc:  # google.auth.exceptions.* (no credentials, bad key file)
            raise PermissionDenied(
                f"cannot load Google credentials for the vertex backend: {exc}",
                hint="Run 'gcloud auth application-default login', set "
                "GOOGLE_APPLICATION_CREDENTIALS, or pass credentials=<key file>.",
                backend=BACKEND,
            ) from exc
        return self._credentials

    def client(self, kind: str) -> Any:
        """The GAPIC client `kind`: "endpoints", "models" or "prediction"."""
        with self._lock:
            client = self._clients.get(kind)
            if client is not None:
                return client
            try:
                from google.api_core.client_options import ClientOptions
                from google.cloud import aiplatform_v1
            except ImportError as exc:
                raise missing_dependency(exc) from exc
            cls: Any = {
                "endpoints": aiplatform_v1.EndpointServiceClient,
                "models": aiplatform_v1.ModelServiceClient,
                "prediction": aiplatform_v1.PredictionServiceClient,
            }[kind]
            if self.plaintext_grpc():
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
                    credentials=self.credentials(),
                    transport=self.transport,
                    client_options=ClientOptions(api_endpoint=self.api_endpoint),
                )
            self._clients[kind] = client
            return client

    def plaintext_grpc(self) -> bool:
        """Whether to speak gRPC without TLS: only to a loopback host:port (a local emulator)
        with anonymous credentials, so a real endpoint or real credentials never go plaintext."""
        if self._plaintext is None:
            anonymous = False
            if self._loopback_grpc:
                credentials = self.credentials()  # MissingDependency without google
                from google.auth.credentials import AnonymousCredentials

                anonymous = isinstance(credentials, AnonymousCredentials)
            self._plaintext = anonymous
        return self._plaintext

    def http(self) -> httpx.Client:
        """The one httpx client for Google's HTTP routes, authorised by the credentials."""
        with self._lock:
            if self._http is None:
                credentials = self.credentials()
                from google.auth.credentials import AnonymousCredentials

                anonymous = isinstance(credentials, AnonymousCredentials)
                auth = None if anonymous else _GoogleAuth(credentials)
                self._http = httpx.Client(auth=auth, timeout=self.call_timeout_s)
            return self._http

    def storage(self) -> Any:
        """The google-cloud-storage client, on `storage_endpoint`."""
        with self._lock:
            client = self._clients.get("storage")
            if client is None:
                try:
                    from google.cloud import storage  # type: ignore[attr-defined]
                except ImportError as exc:
                    raise missing_dependency(exc) from exc
                client = storage.Client(
                    project=self.project,
                    credentials=self.credentials(),
                    client_options={"api_endpoint": self.storage_base},
                )
                self._clients["storage"] = client
            return client

    @staticmethod
    def types() -> Any:
        from google.cloud import aiplatform_v1

        return aiplatform_v1

    def close(self) -> None:
        with self._lock:
            for kind, client in self._clients.items():
                with contextlib.suppress(Exception):
                    if kind == "storage":
                        client.close()
                    else:
                        client.transport.close()
            self._clients.clear()
            if self._http is not None:
                self._http.close()
                self._http = None

    # -- calls --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def errors(
        self,
        operation: str,
        endpoint: str | None = None,
        version: str | None = None,
        *,
        service: str = VERTEX,
    ) -> Iterator[None]:
        """`_errors.google_errors` with this connection's address in its messages."""
        address = self.storage_base if service != VERTEX else self.rest_base
        with google_errors(
            operation, endpoint=endpoint, version=version, service=service, address=address
        ):
            yield

    def call(
        self,
        operation: str,
        fn: Callable[[], T],
        *,
        endpoint: str | None = None,
        version: str | None = None,
        recheck: Callable[[], T | None] | None = None,
        service: str = VERTEX,
    ) -> T:
        """Run `fn` under the control-plane retry policy (Retryable errors only).

        `recheck` makes a non-idempotent call safe to retry: before each retry it looks whether
        the first attempt took effect after all, and returns that instead of calling again.
        """
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and recheck is not None:
                with self.errors(operation, endpoint, version, service=service):
                    done = recheck()
                if done is not None:
                    return done
            with self.errors(operation, endpoint, version, service=service):
                return fn()

        policy = control_plane(attempts=self._retry_attempts, sleep=self._sleep)
        return policy(attempt)


class _GoogleAuth(httpx.Auth):
    """httpx authentication with google-auth credentials: the token is refreshed when it is
    missing or expired, and once more if the service answers 401 (as google-auth's own
    AuthorizedSession does)."""

    def __init__(self, credentials: Any) -> None:
        from google.auth.transport.requests import Request

        self._credentials = credentials
        self._token_client = Request()  # google-auth's own client for the token endpoint
        self._lock = threading.Lock()

    def _authorise(self, request: httpx.Request, *, refresh: bool) -> None:
        headers: dict[str, str] = {}
        with self._lock:
            if refresh:
                self._credentials.refresh(self._token_client)
            self._credentials.before_request(
                self._token_client, request.method, str(request.url), headers
            )
        request.headers.update(headers)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        self._authorise(request, refresh=False)
        response = yield request
        if response.status_code == 401:
            self._authorise(request, refresh=True)
            yield request


def missing_dependency(exc: ImportError) -> EndpointKitError:
    from endpointkit.errors import MissingDependency

    return MissingDependency(
        f"the vertex backend needs google-cloud-aiplatform ({exc.name} is missing).",
        hint="pip install 'endpointkit[vertex]'",
        backend=BACKEND,
    )


def is_loopback(host: str) -> bool:
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
