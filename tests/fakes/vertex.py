"""A faithful fake of the Vertex AI v1 REST API (plus the bits of GCS and Cloud Logging it needs).

One real HTTP server on 127.0.0.1 (port 0, a thread) that the real `google.cloud.aiplatform_v1`
GAPIC clients (transport="rest", AnonymousCredentials, api_endpoint="http://127.0.0.1:PORT") and
the high-level SDK talk to. It follows research/vertex.md section 2.7:

- `/v1/...` for every RPC and `/ui/...` (and `/v1/...`) for operation GETs; `$alt` ignored; paths
  URL-decoded (`models/M%401`); integer enums accepted and returned.
- LROs with the right `@type`s (Empty for deletes), GET-able by name; done at once by default,
  or after `lro_polls` polls.
- Model Registry versions (`"1"`, `"2"`, ...), the `default` alias, `@version|alias` names,
  `supportedDeploymentResourcesTypes`; names carry the project *number*, like the real service.
- DeployModel / UndeployModel / UpdateEndpoint traffic-split rules with the platform's messages
  (`"0"` is the model being deployed; keys must exist; sums to 100 or empty; a model that keeps
  traffic cannot be undeployed: FAILED_PRECONDITION).
- Every DeployedModel is a REAL serving process (`python -m endpointkit.serving`) started with
  the AIP_* environment Vertex sets; `:predict` and `:rawPredict` are routed to them by the live
  split. A deploy fails (LRO error, code 9) when the server is not healthy within the
  container's deployment timeout or startup probe budget (times `time_scale`).
- Streaming: `:streamRawPredict` (dedicated endpoints only; on a shared one FAILED_PRECONDITION,
  wording ours) and the Invoke API relay a container's chunked answer as each chunk arrives; a
  stream the container breaks off is broken off to the client too (what Vertex sends then is
  not documented).
- Faults: `inject(rpc, status)` answers an RPC with 429/503/...; with `after=True` once the call
  took effect (every mutating call can lose its answer), with `drop=True` by closing the
  connection with no answer; `fail_deploy()` fails a deploy; `interleave(rpc, change)` lands
  another writer's change between a read and a write.
- Time: with `deploy_seconds` (x `time_scale`) a DeployModel answers at once with an operation
  that is not done, and its DeployedModel appears only when it is: a deploying window.
- Rules with the service's refusals, each citing its source where it is checked: the endpoint
  etag (a stale one is ABORTED, AIP-154), DeployedModel.model keeping its `@version`, traffic
  split keys and sums, undeploying a model that keeps traffic, image_uri required on upload.
- GCS JSON API (media and multipart upload, download, list, delete) for staged artifacts and
  history, and Cloud Logging `entries:list` serving the containers' logs.

Shortcut (documented): the fake stops waiting for a container as soon as its health route says the
model failed to load (`model_load_failed`), instead of waiting out the deployment timeout.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["Fault", "VertexFake"]

TYPE_PREFIX = "type.googleapis.com/"
V1 = "google.cloud.aiplatform.v1."
SHARED_MAX_BYTES = 1_572_864  # 1.5 MB on shared public endpoints
DEDICATED_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_HEALTH_TIMEOUT_S = 60.0
PREDICTION_LOG = "aiplatform.googleapis.com%2Fprediction_container"

_HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
_GRPC_CODE = {
    "CANCELLED": 1,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "UNAUTHENTICATED": 16,
}
_STATUS_BY_HTTP = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
ENDPOINT_ID = re.compile(r"^([a-z][a-z0-9-]{0,61}[a-z0-9]|[a-z]|[1-9][0-9]{0,8})$")
MODEL_ID = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")
ALIAS = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


class ApiError(Exception):
    """An error answered with Google's envelope: {"error": {code, message, status}}."""

    def __init__(self, status: str, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.http_status = http_status or _HTTP_STATUS.get(status, 500)

    def envelope(self) -> dict[str, Any]:
        return {"error": {"code": self.http_status, "message": self.message, "status": self.status}}


@dataclass
class Fault:
    """Answer `rpc` (e.g. "RawPredict", "DeployModel", "*") with `http_status` `times` times.

    With `after=True` the request takes effect and only the answer is lost, as when a response
    times out: the case where blindly re-sending a create would create twice. With
    `drop=True` no answer comes at all: the connection is closed mid-call (the client sees a
    reset, not a status).
    """

    rpc: str
    http_status: int = 503
    times: int = 1
    message: str = ""
    after: bool = False  # handle the request first, then answer the error (a lost response)
    drop: bool = False  # close the connection instead of answering
    fired: int = 0

    def matches(self, rpc: str) -> bool:
        return self.fired < self.times and self.rpc in ("*", rpc)


@dataclass
class _DeployFault:
    message: str
    display_name: str | None
    times: int
    fired: int = 0


@dataclass
class _Container:
    """A real serving process standing in for one DeployedModel's replicas."""

    endpoint_id: str
    deployed_model_id: str
    process: subprocess.Popen[bytes]
    port: int
    predict_route: str
    health_route: str
    log_path: Path
    invoke: bool = False  # the Model has invoke_route_prefix (dedicated endpoints only)
    started: float = field(default_factory=time.time)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _any(type_name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"@type": TYPE_PREFIX + type_name, **(body or {})}


class VertexFake:
    """The fake service. Use as a context manager; `url` is the api_endpoint to give clients."""

    def __init__(
        self,
        root: Path,
        *,
        project: str = "fake-project",
        project_number: str = "123456789012",
        location: str = "us-central1",
        buckets: tuple[str, ...] = ("endpointkit-staging",),
        lro_polls: int = 0,
        seed: int = 0,
        python: str = sys.executable,
        health_timeout_s: float = DEFAULT_HEALTH_TIMEOUT_S,
        time_scale: float = 1.0,
        deploy_seconds: float = 0.0,
    ) -> None:
        self.root = Path(root)
        self.project = project
        self.project_number = project_number
        self.location = location
        self.lro_polls = lro_polls
        self.python = python
        self.health_timeout_s = health_timeout_s
        #: Real seconds per platform second in deployment timeouts and startup probes.
        self.time_scale = time_scale
        self._random = random.Random(seed)
        self._lock = threading.RLock()
        self._ids = itertools.count(1000)
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, dict[str, Any]]] = {}  # model id -> version id -> Model
        self.operations: dict[str, dict[str, Any]] = {}
        self._op_polls: dict[str, int] = {}
        self.containers: dict[str, _Container] = {}  # deployed model id -> process
        self._stopped_logs: list[tuple[str, str, Path]] = []
        self.faults: list[Fault] = []
        #: Platform seconds a DeployModel takes (times `time_scale`) before its DeployedModel
        #: appears and its operation is done; 0: done in the answer (fast tests).
        self.deploy_seconds = deploy_seconds
        self._running_ops: set[str] = set()
        self._op_threads: list[threading.Thread] = []
        self._interleaved: list[tuple[str, Callable[[], object]]] = []
        self._deploy_faults: list[_DeployFault] = []
        self.requests: list[tuple[str, str, str]] = []  # (HTTP method, decoded path, rpc)
        self.gcs_root = self.root / "gcs"
        self.managed_root = self.root / "vertex-managed"
        for bucket in buckets:
            (self.gcs_root / bucket).mkdir(parents=True, exist_ok=True)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> VertexFake:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="vertex-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop every serving process, then the HTTP server."""
        for thread in list(self._op_threads):  # deployments under way end first
            thread.join(timeout=120)
        with self._lock:
            containers = list(self.containers.values())
            self.containers.clear()
        for container in containers:
            self._stop_container(container)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> VertexFake:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- test controls ---------------------------------------------------------------------------

    def inject(
        self,
        rpc: str,
        http_status: int = 503,
        *,
        times: int = 1,
        message: str = "",
        after: bool = False,
        drop: bool = False,
    ) -> Fault:
        """Answer the next `times` calls of `rpc` ("RawPredict", "*", ...) with an error; with
        `after`, once the call took effect (a lost answer); with `drop`, by closing the
        connection without any answer."""
        fault = Fault(
            rpc=rpc, http_status=http_status, times=times, message=message, after=after, drop=drop
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def interleave(self, rpc: str, change: Callable[[], object]) -> None:
        """Run `change` once, just before the next `rpc` request is handled: another client's
        change landing between a read and a write (e.g. `lambda: fake.update_endpoint(...)`)."""
        with self._lock:
            self._interleaved.append((rpc, change))

    def running_operations(self) -> list[str]:
        """Names of the operations under way (see `deploy_seconds`)."""
        with self._lock:
            return sorted(self._running_ops)

    def finish_operations(self) -> None:
        """Mark every operation done (ends a test that left an adapter polling)."""
        with self._lock:
            self.lro_polls = 0
            self._op_polls.clear()

    def fail_deploy(
        self, message: str = "", *, display_name: str | None = None, times: int = 1
    ) -> None:
        """Fail the next DeployModel (of `display_name`, or any) after its LRO starts."""
        with self._lock:
            self._deploy_faults.append(_DeployFault(message, display_name, times))

    def calls(self, rpc: str) -> int:
        """How many requests of `rpc` reached the fake (injected faults included)."""
        with self._lock:
            return sum(1 for _, _, name in self.requests if name == rpc)

    def live_processes(self) -> list[int]:
        """PIDs of serving processes still running."""
        with self._lock:
            return [c.process.pid for c in self.containers.values() if c.process.poll() is None]

    def gcs_objects(self, bucket: str, prefix: str = "") -> list[str]:
        base = self.gcs_root / bucket
        return sorted(
            str(p.relative_to(base))
            for p in base.rglob("*")
            if p.is_file()
            and not p.name.endswith(".generation")
            and str(p.relative_to(base)).startswith(prefix)
        )

    # -- names -----------------------------------------------------------------------------------

    def _parent(self) -> str:
        return f"projects/{self.project_number}/locations/{self.location}"

    def _check_parent(self, project: str, location: str) -> None:
        if project not in (self.project, self.project_number) or location != self.location:
            raise ApiError(
                "PERMISSION_DENIED",
                f"Permission denied on resource project {project} (or it may not exist) in "
                f"location {location}.",
            )

    def _endpoint_name(self, endpoint_id: str) -> str:
        return f"{self._parent()}/endpoints/{endpoint_id}"

    def _model_name(self, model_id: str) -> str:
        return f"{self._parent()}/models/{model_id}"

    def _logs_url(self, endpoint_id: str) -> str:
        query = (
            'resource.type="aiplatform.googleapis.com/Endpoint"\n'
            f'resource.labels.endpoint_id="{endpoint_id}"\n'
            f'resource.labels.location="{self.location}"'
        )
        return (
            "https://console.cloud.google.com/logs/viewer?project="
            f"{self.project_number}&resource=aiplatform.googleapis.com%2FEndpoint"
            f"&advancedFilter={quote(query)}"
        )

    # -- operations ------------------------------------------------------------------------------

    def _operation(
        self,
        resource: str,
        metadata_type: str,
        *,
        response: dict[str, Any] | None = None,
        error: ApiError | None = None,
    ) -> dict[str, Any]:
        name = f"{resource}/operations/{next(self._ids)}"
        now = _now()
        op: dict[str, Any] = {
            "name": name,
            "metadata": _any(
                V1 + metadata_type, {"genericMetadata": {"createTime": now, "updateTime": now}}
            ),
            "done": True,
        }
        if error is not None:
            op["error"] = {"code": _GRPC_CODE[error.status], "message": error.message}
        else:
            op["response"] = response if response is not None else _any("google.protobuf.Empty")
        with self._lock:
            self.operations[name] = op
            self._op_polls[name] = self.lro_polls
        return self._op_view(name, poll=False)

    def _in_background(
        self, resource: str, metadata_type: str, work: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """An operation answered at once and not done; after `deploy_seconds` x `time_scale`
        real seconds `work` runs (its effect shows only then) and its outcome (an operation
        of its own) becomes this one's."""
        name = f"{resource}/operations/{next(self._ids)}"
        now = _now()
        metadata = _any(
            V1 + metadata_type, {"genericMetadata": {"createTime": now, "updateTime": now}}
        )
        with self._lock:
            self.operations[name] = {"name": name, "metadata": metadata, "done": False}
            self._running_ops.add(name)

        def run() -> None:
            time.sleep(self.deploy_seconds * self.time_scale)
            outcome = work()
            with self._lock:
                done = {k: v for k, v in outcome.items() if k in ("response", "error")}
                self.operations[name].update(done, done=True)
                self._running_ops.discard(name)

        thread = threading.Thread(target=run, name="vertex-fake-operation", daemon=True)
        with self._lock:
            self._op_threads.append(thread)
        thread.start()
        return {"name": name, "metadata": metadata, "done": False}

    def _op_view(self, name: str, *, poll: bool) -> dict[str, Any]:
        with self._lock:
            op = self.operations.get(name)
            if op is None:
                raise ApiError("NOT_FOUND", f"Operation {name} is not found.")
            if name in self._running_ops:
                return {"name": name, "metadata": op["metadata"], "done": False}
            left = self._op_polls.get(name, 0)
            if poll and left > 0:
                self._op_polls[name] = left - 1
            if self._op_polls.get(name, 0) > 0 or (not poll and left > 0):
                return {"name": name, "metadata": op["metadata"], "done": False}
            return op

    # -- endpoints -------------------------------------------------------------------------------

    def _get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            raise ApiError("NOT_FOUND", f'Endpoint "{self._endpoint_name(endpoint_id)}" not found.')
        return endpoint

    def create_endpoint(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        endpoint_id = query.get("endpointId") or str(next(self._ids) * 1000 + 7)
        if not ENDPOINT_ID.match(endpoint_id):
            raise ApiError(
                "INVALID_ARGUMENT",
                f"Invalid endpoint_id {endpoint_id!r}: it must match "
                "[a-z]([a-z0-9-]{0,61}[a-z0-9])? or be at most 9 digits.",
            )
        if not body.get("displayName"):
            raise ApiError("INVALID_ARGUMENT", "Endpoint.display_name is required.")
        self._check_labels(body.get("labels") or {})
        with self._lock:
            if endpoint_id in self.endpoints:
                raise ApiError(
                    "ALREADY_EXISTS",
                    f"Endpoint with id {endpoint_id} already exists in {self._parent()}.",
                )
            now = _now()
            endpoint = {
                "name": self._endpoint_name(endpoint_id),
                "displayName": body["displayName"],
                "description": body.get("description", ""),
                "deployedModels": [],
                "trafficSplit": {},
                "labels": dict(body.get("labels") or {}),
                "createTime": now,
                "updateTime": now,
                "etag": f"etag-{next(self._ids)}",
            }
            if body.get("dedicatedEndpointEnabled"):
                endpoint["dedicatedEndpointEnabled"] = True
                endpoint["dedicatedEndpointDns"] = (
                    f"{endpoint_id}.{self.location}-{self.project_number}.prediction.vertexai.goog"
                )
            self.endpoints[endpoint_id] = endpoint
            view = self._endpoint_view(endpoint)
        return self._operation(
            view["name"],
            "CreateEndpointOperationMetadata",
            response=_any(V1 + "Endpoint", view),
        )

    def _endpoint_view(self, endpoint: dict[str, Any]) -> dict[str, Any]:
        view = json.loads(json.dumps(endpoint))
        for key in ("deployedModels", "trafficSplit", "labels", "description"):
            if not view.get(key):
                view.pop(key, None)  # empty fields are omitted on the wire
        return view

    def list_endpoints(self, query: dict[str, str]) -> dict[str, Any]:
        wanted = _parse_label_filter(query.get("filter", ""))
        with self._lock:
            items = [
                self._endpoint_view(e)
                for e in self.endpoints.values()
                if all(e["labels"].get(k) == v for k, v in wanted.items())
            ]
        return {"endpoints": items} if items else {}

    def update_endpoint(
        self, endpoint_id: str, query: dict[str, str], body: dict[str, Any]
    ) -> dict[str, Any]:
        mask = [m.strip() for m in query.get("updateMask", "").split(",") if m.strip()]
        if not mask:
            raise ApiError("INVALID_ARGUMENT", "update_mask is required.")
        with self._lock:
            endpoint = self._get_endpoint(endpoint_id)
            # Endpoint.etag: "Used to perform consistent read-modify-write updates. If not
            # set, a blind 'overwrite' update happens" (aiplatform_v1 types/endpoint.py); a
            # stale one is refused ABORTED (https://google.aip.dev/154). Wording ours.
            if body.get("etag") and body["etag"] != endpoint["etag"]:
                raise ApiError(
                    "ABORTED",
                    f"The etag {body['etag']} does not match the current etag of endpoint "
                    f"{endpoint['name']}: it was changed since it was read.",
                )
            for path in mask:
                key = _camel(path)
                if key == "trafficSplit":
                    split = {k: int(v) for k, v in (body.get("trafficSplit") or {}).items()}
                    self._check_split(endpoint, split, allow_zero_key=False)
                    endpoint["trafficSplit"] = split
                elif key in ("displayName", "description", "labels"):
                    if key == "labels":
                        self._check_labels(body.get("labels") or {})
                    endpoint[key] = body.get(key) or ({} if key == "labels" else "")
                else:
                    raise ApiError(
                        "INVALID_ARGUMENT", f"Field {path} is not supported in update_mask."
                    )
            endpoint["updateTime"] = _now()
            endpoint["etag"] = f"etag-{next(self._ids)}"
            return self._endpoint_view(endpoint)

    def delete_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        with self._lock:
            endpoint = self._get_endpoint(endpoint_id)
            if endpoint["deployedModels"]:
                ids = ", ".join(d["id"] for d in endpoint["deployedModels"])
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f"Endpoint {endpoint['name']} has deployed models ({ids}). Undeploy them "
                    "before deleting the endpoint.",
                )
            del self.endpoints[endpoint_id]
        return self._operation(endpoint["name"], "DeleteOperationMetadata")

    def _check_split(
        self, endpoint: dict[str, Any], split: dict[str, int], *, allow_zero_key: bool
    ) -> None:
        ids = {d["id"] for d in endpoint["deployedModels"]}
        if allow_zero_key:
            ids.add("0")
        missing = sorted(k for k in split if k not in ids)
        if missing:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"The following DeployedModel ID(s) [{', '.join(missing)}] do not exist.",
            )
        if any(v < 0 or v > 100 for v in split.values()):
            raise ApiError("INVALID_ARGUMENT", "Traffic split values must be between 0 and 100.")
        if split and sum(split.values()) != 100:
            raise ApiError(
                "INVALID_ARGUMENT",
                "The sum of traffic split percentages must be 100 or the map must be empty; "
                f"got {sum(split.values())}.",
            )

    # -- deploy / undeploy -----------------------------------------------------------------------

    def deploy_model(self, endpoint_id: str, body: dict[str, Any]) -> dict[str, Any]:
        deployed = dict(body.get("deployedModel") or {})
        split = {k: int(v) for k, v in (body.get("trafficSplit") or {}).items()}
        with self._lock:
            endpoint = self._get_endpoint(endpoint_id)
            model = self._resolve_model(deployed.get("model", ""))
            invoke = bool((model.get("containerSpec") or {}).get("invokeRoutePrefix"))
            if invoke and not endpoint.get("dedicatedEndpointEnabled"):
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f"Model {model['name']} sets invoke_route_prefix and can only be deployed to "
                    "a dedicated endpoint.",
                )
            if split:
                self._check_split(endpoint, split, allow_zero_key=True)
            resources = deployed.get("dedicatedResources")
            if not resources:
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f"Model {model['name']} supports deployment resources types "
                    "[DEDICATED_RESOURCES, SHARED_RESOURCES]; DeployedModel.dedicated_resources "
                    "is required.",
                )
            if not (resources.get("machineSpec") or {}).get("machineType"):
                raise ApiError(
                    "INVALID_ARGUMENT", "dedicated_resources.machine_spec.machine_type is required."
                )
            if int(resources.get("minReplicaCount") or 0) < 1:
                raise ApiError(
                    "INVALID_ARGUMENT", "dedicated_resources.min_replica_count must be >= 1."
                )
            dm_id = str(deployed.get("id") or next(self._ids) * 1000 + 11)
            if not re.match(r"^[0-9]{1,10}$", dm_id) or any(
                d["id"] == dm_id for e in self.endpoints.values() for d in e["deployedModels"]
            ):
                raise ApiError(
                    "INVALID_ARGUMENT", f"Invalid or duplicate DeployedModel id {dm_id}."
                )
            display = deployed.get("displayName") or model.get("displayName", "")
            fault = self._take_deploy_fault(display)

        def finish() -> dict[str, Any]:
            failure: ApiError | None = None
            container: _Container | None = None
            if fault is not None:
                failure = ApiError(
                    "FAILED_PRECONDITION",
                    (fault.message or "Deployment failed (injected).")
                    + f" Model server logs can be found at {self._logs_url(endpoint_id)}",
                )
            else:
                container, failure = self._start_container(endpoint_id, dm_id, model, resources)
            if failure is None and container is not None:
                with self._lock:
                    endpoint = self.endpoints.get(endpoint_id)
                    if endpoint is None:
                        failure = ApiError("NOT_FOUND", f"Endpoint {endpoint_id} was deleted.")
                    else:
                        # DeployedModel.model keeps the version the request named: "The resource
                        # name may contain version id or version alias to specify the version"
                        # (aiplatform_v1 types/endpoint.py DeployedModel.model; research/vertex.md
                        # 2.4). modelVersionId is the version it resolved to.
                        _, ref = self._split_model_name(deployed.get("model", ""))
                        entry = {
                            "id": dm_id,
                            "model": model["name"] + (f"@{ref}" if ref else ""),
                            "modelVersionId": model["versionId"],
                            "displayName": display,
                            "createTime": _now(),
                            "dedicatedResources": resources,
                        }
                        kept = ("serviceAccount", "disableContainerLogging", "enableAccessLogging")
                        for key in kept:
                            if key in deployed:
                                entry[key] = deployed[key]
                        endpoint["deployedModels"].append(entry)
                        if split:
                            endpoint["trafficSplit"] = {
                                (dm_id if k == "0" else k): v for k, v in split.items()
                            }
                        endpoint["updateTime"] = _now()
                        endpoint["etag"] = f"etag-{next(self._ids)}"
                        model.setdefault("deployedModels", []).append(
                            {"endpoint": endpoint["name"], "deployedModelId": dm_id}
                        )
                        self.containers[dm_id] = container
                        return self._operation(
                            endpoint["name"],
                            "DeployModelOperationMetadata",
                            response=_any(V1 + "DeployModelResponse", {"deployedModel": entry}),
                        )
            if container is not None:
                self._stop_container(container)
            assert failure is not None
            return self._operation(
                self._endpoint_name(endpoint_id), "DeployModelOperationMetadata", error=failure
            )

        if self.deploy_seconds <= 0:
            return finish()
        # A deployment takes time: the operation is answered at once, not done, and the
        # DeployedModel appears (and takes its traffic) only when it is done. How the fake
        # reads the LRO docs (research/vertex.md 2.3), not measured against the service.
        return self._in_background(
            self._endpoint_name(endpoint_id), "DeployModelOperationMetadata", finish
        )

    def _take_deploy_fault(self, display_name: str) -> _DeployFault | None:
        for fault in self._deploy_faults:
            if fault.fired < fault.times and fault.display_name in (None, display_name):
                fault.fired += 1
                return fault
        return None

    def _start_container(
        self,
        endpoint_id: str,
        dm_id: str,
        model: dict[str, Any],
        resources: dict[str, Any],
    ) -> tuple[_Container | None, ApiError | None]:
        spec = model.get("containerSpec") or {}
        default_route = f"/v1/endpoints/{endpoint_id}/deployedModels/{dm_id}"
        predict_route = spec.get("predictRoute") or default_route + ":predict"
        health_route = spec.get("healthRoute") or default_route
        port = _free_port()
        storage = model.get("_managedDir", "")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIP_")}
        env.update({item["name"]: item.get("value", "") for item in spec.get("env") or []})
        env.update(
            {
                "AIP_HTTP_PORT": str(port),
                "AIP_HEALTH_ROUTE": health_route,
                "AIP_PREDICT_ROUTE": predict_route,
                "AIP_STORAGE_URI": storage,
                "AIP_ENDPOINT_ID": endpoint_id,
                "AIP_MODEL_NAME": endpoint_id,
                "AIP_DEPLOYED_MODEL_ID": dm_id,
                "AIP_VERSION_NAME": dm_id,
                "AIP_MODE": "PREDICTION",
                "AIP_MODE_VERSION": "1.0.0",
                "AIP_FRAMEWORK": "CUSTOM_CONTAINER",
                "AIP_PROJECT_NUMBER": self.project_number,
                "AIP_MACHINE_TYPE": str((resources.get("machineSpec") or {}).get("machineType")),
            }
        )
        log_dir = self.root / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{endpoint_id}-{dm_id}.log"
        command = [
            self.python, "-m", "endpointkit.serving",
            "--host", "127.0.0.1", "--port", str(port), "--model-dir", storage,
            "--workers", "1", "--grace", "0", "--request-log", "errors",
        ]  # fmt: skip
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        container = _Container(
            endpoint_id,
            dm_id,
            process,
            port,
            predict_route,
            health_route,
            log_path,
            invoke=bool(spec.get("invokeRoutePrefix")),
        )
        deadline = time.monotonic() + self._startup_budget(spec)
        logs_hint = f" Model server logs can be found at {self._logs_url(endpoint_id)}"
        while True:
            if process.poll() is not None:
                self._keep_logs(container)
                return None, ApiError(
                    "FAILED_PRECONDITION",
                    f"Model server exited unexpectedly (exit code {process.returncode})."
                    + logs_hint,
                )
            status, body = _http(port, "GET", health_route, timeout=5)
            if status == 200:
                return container, None
            if b"model_load_failed" in body or time.monotonic() > deadline:
                self._stop_container(container)
                return None, ApiError(
                    "FAILED_PRECONDITION",
                    "Model server never became ready. Please validate that your model file or "
                    "container configuration are valid." + logs_hint,
                )
            time.sleep(0.1)

    def _startup_budget(self, spec: dict[str, Any]) -> float:
        """Real seconds a container gets to become healthy: the deployment timeout and the
        startup probe's initialDelaySeconds + periodSeconds x failureThreshold (Kubernetes
        defaults 10 and 3), whichever ends first, times `time_scale`; `health_timeout_s` when
        neither is set. Shortcut: Vertex restarts a container that fails its startup probe
        until the deployment timeout; the fake fails the deploy at once."""
        budgets = []
        if spec.get("deploymentTimeout"):
            budgets.append(_duration(spec["deploymentTimeout"], self.health_timeout_s))
        probe = spec.get("startupProbe")
        if probe:
            budgets.append(
                int(probe.get("initialDelaySeconds", 0))
                + int(probe.get("periodSeconds", 10)) * int(probe.get("failureThreshold", 3))
            )
        if not budgets:
            return self.health_timeout_s
        return min(budgets) * self.time_scale

    def _stop_container(self, container: _Container) -> None:
        process = container.process
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._keep_logs(container)

    def _keep_logs(self, container: _Container) -> None:
        with self._lock:
            entry = (container.endpoint_id, container.deployed_model_id, container.log_path)
            if entry not in self._stopped_logs:
                self._stopped_logs.append(entry)

    def undeploy_model(self, endpoint_id: str, body: dict[str, Any]) -> dict[str, Any]:
        dm_id = str(body.get("deployedModelId") or "")
        split_given = "trafficSplit" in body and body["trafficSplit"] is not None
        with self._lock:
            endpoint = self._get_endpoint(endpoint_id)
            ids = [d["id"] for d in endpoint["deployedModels"]]
            if dm_id not in ids:
                raise ApiError(
                    "NOT_FOUND",
                    f"DeployedModel with ID {dm_id} not found in Endpoint {endpoint['name']}.",
                )
            split = (
                {k: int(v) for k, v in body["trafficSplit"].items()}
                if split_given
                else dict(endpoint["trafficSplit"])
            )
            if split_given and split:
                self._check_split(endpoint, split, allow_zero_key=False)
            if split.get(dm_id, 0) > 0 and len(ids) > 1:
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f"Model {dm_id} has traffic assigned ({split[dm_id]}%). Undeploying it would "
                    "leave the endpoint's traffic split invalid; provide a traffic_split that "
                    "moves its traffic to other deployed models.",
                )
            split.pop(dm_id, None)
            remaining = [d for d in endpoint["deployedModels"] if d["id"] != dm_id]
            if not remaining:
                split = {}
            elif split and sum(split.values()) != 100:
                raise ApiError(
                    "INVALID_ARGUMENT",
                    "The sum of traffic split percentages must be 100 or the map must be "
                    f"empty; got {sum(split.values())}.",
                )
            removed = next(d for d in endpoint["deployedModels"] if d["id"] == dm_id)
            endpoint["deployedModels"] = remaining
            endpoint["trafficSplit"] = split
            endpoint["updateTime"] = _now()
            endpoint["etag"] = f"etag-{next(self._ids)}"
            model = self._find_version(removed["model"], removed["modelVersionId"])
            if model is not None:
                model["deployedModels"] = [
                    d for d in model.get("deployedModels", []) if d["deployedModelId"] != dm_id
                ]
            container = self.containers.pop(dm_id, None)
        if container is not None:
            self._stop_container(container)
        return self._operation(
            endpoint["name"],
            "UndeployModelOperationMetadata",
            response=_any(V1 + "UndeployModelResponse"),
        )

    def mutate_deployed_model(self, endpoint_id: str, body: dict[str, Any]) -> dict[str, Any]:
        deployed = body.get("deployedModel") or {}
        mask = body.get("updateMask") or ""
        paths = mask.split(",") if isinstance(mask, str) else list(mask.get("paths", []))
        allowed = {
            "dedicatedResources.minReplicaCount",
            "dedicatedResources.maxReplicaCount",
            "dedicatedResources.requiredReplicaCount",
            "dedicatedResources.autoscalingMetricSpecs",
            "disableContainerLogging",
        }
        with self._lock:
            endpoint = self._get_endpoint(endpoint_id)
            entry = next(
                (d for d in endpoint["deployedModels"] if d["id"] == str(deployed.get("id"))),
                None,
            )
            if entry is None:
                raise ApiError("NOT_FOUND", f"DeployedModel {deployed.get('id')} not found.")
            for path in (_camel_path(p.strip()) for p in paths if p.strip()):
                if path not in allowed:
                    raise ApiError("INVALID_ARGUMENT", f"Field {path} cannot be mutated.")
                head, _, leaf = path.partition(".")
                if leaf:
                    entry.setdefault(head, {})[leaf] = (deployed.get(head) or {}).get(leaf)
                else:
                    entry[head] = deployed.get(head)
            return self._operation(
                endpoint["name"],
                "MutateDeployedModelOperationMetadata",
                response=_any(V1 + "MutateDeployedModelResponse", {"deployedModel": entry}),
            )

    # -- models ----------------------------------------------------------------------------------

    def upload_model(self, body: dict[str, Any]) -> dict[str, Any]:
        model = dict(body.get("model") or {})
        parent_model = body.get("parentModel") or ""
        if not model.get("displayName"):
            raise ApiError("INVALID_ARGUMENT", "Model.display_name is required.")
        spec = model.get("containerSpec") or {}
        if not spec.get("imageUri"):
            # ModelContainerSpec.image_uri: "Required. Immutable. URI of the Docker image to be
            # used as the custom container" (aiplatform_v1 types/model.py; research 1.6).
            raise ApiError("INVALID_ARGUMENT", "Model.container_spec.image_uri is required.")
        if spec.get("invokeRoutePrefix") and spec.get("predictRoute"):
            raise ApiError(
                "INVALID_ARGUMENT",
                "Only one of predict_route or invoke_route_prefix can be set.",
            )
        if spec.get("invokeRoutePrefix") not in (None, "", "/*"):
            raise ApiError("INVALID_ARGUMENT", '"/*" is the only supported invoke_route_prefix.')
        aliases = list(model.get("versionAliases") or [])
        for alias in aliases:
            if not ALIAS.match(alias):
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f"Version alias {alias!r} is invalid: it must match "
                    "[a-z][a-zA-Z0-9-]{0,126}[a-z0-9].",
                )
        self._check_labels(model.get("labels") or {})
        managed = self._copy_artifacts(model.get("artifactUri") or "")
        with self._lock:
            if parent_model:
                model_id = parent_model.rstrip("/").split("/")[-1]
                if model_id not in self.models:
                    raise ApiError("NOT_FOUND", f'Model "{parent_model}" not found.')
                versions = self.models[model_id]
                version_id = str(max(int(v) for v in versions) + 1)
            else:
                given = body.get("modelId")
                model_id = given or str(next(self._ids) * 1000 + 3)  # numeric when generated
                if given and not MODEL_ID.match(given):
                    raise ApiError("INVALID_ARGUMENT", f"Invalid model_id {model_id!r}.")
                if model_id in self.models:
                    raise ApiError(
                        "ALREADY_EXISTS",
                        f"Model with id {model_id} already exists; use parent_model to upload a "
                        "new version.",
                    )
                versions = self.models.setdefault(model_id, {})
                version_id = "1"
            taken = {a for v in versions.values() for a in v["versionAliases"]}
            clash = sorted((set(aliases) - {"default"}) & taken)
            if clash:
                if not versions:
                    del self.models[model_id]
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f"Version aliases {clash} are already used by another version of model "
                    f"{self._model_name(model_id)}.",
                )
            if not versions and "default" not in aliases:
                aliases.insert(0, "default")  # the first version is the default one
            elif versions and "default" in aliases:
                for other in versions.values():  # exactly one default: it moves
                    if "default" in other["versionAliases"]:
                        other["versionAliases"].remove("default")
            now = _now()
            stored = {
                **model,
                "name": self._model_name(model_id),
                "versionId": version_id,
                "versionAliases": aliases,
                "versionCreateTime": now,
                "versionUpdateTime": now,
                "createTime": now,
                "updateTime": now,
                "supportedDeploymentResourcesTypes": [1, 3],  # DEDICATED, SHARED
                "etag": f"etag-{next(self._ids)}",
                "_managedDir": managed,
            }
            versions[version_id] = stored
            name = self._model_name(model_id)
        return self._operation(
            name,
            "UploadModelOperationMetadata",
            response=_any(
                V1 + "UploadModelResponse", {"model": name, "modelVersionId": version_id}
            ),
        )

    def _copy_artifacts(self, uri: str) -> str:
        """Vertex copies the artifacts into its own storage at upload; so does the fake."""
        if not uri:
            return ""
        if not uri.startswith("gs://"):
            raise ApiError("INVALID_ARGUMENT", f"artifact_uri {uri!r} must be a gs:// URI.")
        bucket, _, prefix = uri[5:].partition("/")
        source = self.gcs_root / bucket / prefix
        if not (self.gcs_root / bucket).is_dir():
            raise ApiError("NOT_FOUND", f"Bucket {bucket} does not exist.")
        if not source.is_dir() or not any(source.iterdir()):
            raise ApiError("INVALID_ARGUMENT", f"There are no files under artifact_uri {uri}.")
        target = self.managed_root / f"copy-{next(self._ids)}"
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.generation"))
        return str(target)

    def _split_model_name(self, name: str) -> tuple[str, str | None]:
        match = re.match(r"^projects/([^/]+)/locations/([^/]+)/models/([^/@]+)(?:@(.+))?$", name)
        if match is None:
            raise ApiError("INVALID_ARGUMENT", f"Invalid model name {name!r}.")
        self._check_parent(match.group(1), match.group(2))
        return match.group(3), match.group(4)

    def _resolve_model(self, name: str) -> dict[str, Any]:
        model_id, ref = self._split_model_name(name)
        versions = self.models.get(model_id)
        if not versions:
            raise ApiError("NOT_FOUND", f'Model "{self._model_name(model_id)}" not found.')
        ref = ref or "default"
        for version in versions.values():
            if ref == version["versionId"] or ref in version["versionAliases"]:
                return version
        raise ApiError("NOT_FOUND", f'Model "{self._model_name(model_id)}@{ref}" not found.')

    def _find_version(self, model_name: str, version_id: str) -> dict[str, Any] | None:
        model_id = model_name.split("/")[-1].split("@")[0]
        return self.models.get(model_id, {}).get(version_id)

    def model_view(self, model: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in model.items() if not k.startswith("_")}
        view["name"] = model["name"]
        return json.loads(json.dumps(view))

    def get_model(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self.model_view(self._resolve_model(name))

    def list_models(self, query: dict[str, str]) -> dict[str, Any]:
        wanted = _parse_label_filter(query.get("filter", ""))
        with self._lock:
            items = []
            for versions in self.models.values():
                default = next(v for v in versions.values() if "default" in v["versionAliases"])
                if all((default.get("labels") or {}).get(k) == v for k, v in wanted.items()):
                    items.append(self.model_view(default))
        return {"models": items} if items else {}

    def list_versions(self, name: str) -> dict[str, Any]:
        model_id, _ = self._split_model_name(name)
        with self._lock:
            versions = self.models.get(model_id)
            if not versions:
                raise ApiError("NOT_FOUND", f'Model "{self._model_name(model_id)}" not found.')
            return {"models": [self.model_view(v) for v in versions.values()]}

    def merge_aliases(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            model = self._resolve_model(name)
            versions = self.models[name.split("/")[-1].split("@")[0]]
            for alias in body.get("versionAliases") or []:
                if alias.startswith("-"):
                    if alias[1:] == "default":
                        raise ApiError("INVALID_ARGUMENT", "The default alias cannot be removed.")
                    if alias[1:] in model["versionAliases"]:
                        model["versionAliases"].remove(alias[1:])
                    continue
                if alias != "default" and not ALIAS.match(alias):
                    raise ApiError("INVALID_ARGUMENT", f"Version alias {alias!r} is invalid.")
                for other in versions.values():  # an alias names one version: it moves
                    if other is not model and alias in other["versionAliases"]:
                        other["versionAliases"].remove(alias)
                if alias not in model["versionAliases"]:
                    model["versionAliases"].append(alias)
            model["versionUpdateTime"] = _now()
            return self.model_view(model)

    def delete_model(self, name: str, *, version_only: bool) -> dict[str, Any]:
        model_id, ref = self._split_model_name(name)
        with self._lock:
            versions = self.models.get(model_id)
            if not versions:
                raise ApiError("NOT_FOUND", f'Model "{self._model_name(model_id)}" not found.')
            if version_only:
                if ref is None:
                    raise ApiError(
                        "INVALID_ARGUMENT", "DeleteModelVersion needs a name with @version."
                    )
                model = self._resolve_model(name)
                targets = [model]
                if "default" in model["versionAliases"] and len(versions) > 1:
                    raise ApiError(
                        "FAILED_PRECONDITION",
                        f"Model version {model_id}@{model['versionId']} is the default version "
                        "and cannot be deleted. Make another version the default first.",
                    )
            else:
                targets = list(versions.values())
            for model in targets:
                if model.get("deployedModels"):
                    where = ", ".join(d["endpoint"] for d in model["deployedModels"])
                    raise ApiError(
                        "FAILED_PRECONDITION",
                        f"Model {model_id}@{model['versionId']} is deployed to {where}. "
                        "Undeploy it from all endpoints first.",
                    )
            for model in targets:
                del versions[model["versionId"]]
                shutil.rmtree(model.get("_managedDir") or "/nonexistent", ignore_errors=True)
            if not versions:
                del self.models[model_id]
        return self._operation(self._model_name(model_id), "DeleteOperationMetadata")

    # -- prediction ------------------------------------------------------------------------------

    def _route(
        self, endpoint_id: str, deployed_id: str | None = None, *, invoke: bool = False
    ) -> tuple[dict[str, Any], _Container, dict[str, Any]]:
        with self._lock:
            endpoint = self._get_endpoint(endpoint_id)
            if invoke and not endpoint.get("dedicatedEndpointEnabled"):
                raise ApiError(
                    "FAILED_PRECONDITION",
                    "Invoke is only supported on dedicated endpoints; endpoint "
                    f"{endpoint['name']} is a shared public endpoint.",
                )
            if deployed_id is not None:  # the Invoke API can target one deployed model
                dm_id = deployed_id
                if dm_id not in {d["id"] for d in endpoint["deployedModels"]}:
                    raise ApiError(
                        "NOT_FOUND",
                        f"DeployedModel {dm_id} not found in Endpoint {endpoint['name']}.",
                    )
            else:
                split = {k: v for k, v in endpoint["trafficSplit"].items() if v > 0}
                if not split:
                    raise ApiError(
                        "FAILED_PRECONDITION",
                        f"Endpoint {endpoint['name']} doesn't have traffic_split.",
                    )
                ids = sorted(split)
                dm_id = self._random.choices(ids, weights=[split[i] for i in ids])[0]
            entry = next(d for d in endpoint["deployedModels"] if d["id"] == dm_id)
            container = self.containers[dm_id]
            if container.invoke != invoke:
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f"DeployedModel {dm_id} "
                    + (
                        "has no invoke_route_prefix; use :predict or :rawPredict."
                        if invoke
                        else "serves the invoke route only (invoke_route_prefix is set); use "
                        "/invoke/... on the endpoint's dedicated DNS."
                    ),
                )
            return endpoint, container, entry

    def _limit(self, endpoint: dict[str, Any], size: int) -> None:
        limit = (
            DEDICATED_MAX_BYTES if endpoint.get("dedicatedEndpointEnabled") else SHARED_MAX_BYTES
        )
        if size > limit:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"Request payload size exceeds the limit: {limit} bytes.",
            )

    def predict(self, endpoint_id: str, raw: bytes) -> dict[str, Any]:
        body = json.loads(raw or b"{}")
        endpoint, container, entry = self._route(endpoint_id)
        self._limit(endpoint, len(raw))
        payload = {"instances": body.get("instances", [])}
        if body.get("parameters") is not None:
            payload["parameters"] = body["parameters"]
        status, answer, _ = _forward(
            container, json.dumps(payload).encode(), {"Content-Type": "application/json"}
        )
        if status != 200:
            raise ApiError(
                "FAILED_PRECONDITION" if status < 500 else "INTERNAL",
                answer.decode("utf-8", "replace"),
                http_status=status if status in (400, 500) else (400 if status < 500 else 500),
            )
        result = json.loads(answer)
        result.update(
            {
                "deployedModelId": entry["id"],
                "model": entry["model"],
                "modelVersionId": entry["modelVersionId"],
                "modelDisplayName": entry["displayName"],
            }
        )
        return result

    def raw_predict(
        self, endpoint_id: str, raw: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        endpoint, container, entry = self._route(endpoint_id)
        self._limit(endpoint, len(raw))
        forward = {k: v for k, v in headers.items() if k.lower() in ("content-type", "accept")}
        status, answer, answer_headers = _forward(container, raw, forward)
        out = {
            "Content-Type": answer_headers.get("content-type", "application/json"),
            "X-Vertex-AI-Endpoint-Id": endpoint_id,
            "X-Vertex-AI-Deployed-Model-Id": entry["id"],
        }
        return status, answer, out

    def invoke(
        self,
        endpoint_id: str,
        deployed_id: str | None,
        path: str,
        raw: bytes,
        headers: dict[str, str],
    ) -> tuple[int, bytes, dict[str, str]]:
        endpoint, container, _ = self._route(endpoint_id, deployed_id, invoke=True)
        self._limit(endpoint, len(raw))
        forward = {k: v for k, v in headers.items() if k.lower() in ("content-type", "accept")}
        status, answer, answer_headers = _forward(container, raw, forward, path=path)
        out = {"Content-Type": answer_headers.get("content-type", "application/json")}
        for key in ("x-endpointkit-version", "x-request-id"):
            if key in answer_headers:
                out[key] = answer_headers[key]
        return status, answer, out

    def open_stream(
        self,
        endpoint_id: str,
        deployed_id: str | None,
        path: str | None,
        raw: bytes,
        headers: dict[str, str],
        *,
        invoke: bool,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, dict[str, str]]:
        """Send a request on to its container and return the answer unread, for the handler to
        relay as it arrives: the Invoke API (`invoke`) or `:streamRawPredict`."""
        if not invoke:
            with self._lock:
                endpoint = self._get_endpoint(endpoint_id)
            if not endpoint.get("dedicatedEndpointEnabled"):
                raise ApiError(
                    "FAILED_PRECONDITION",
                    "StreamRawPredict is only supported on dedicated and Private Service Connect "
                    f"endpoints; endpoint {endpoint['name']} is a shared public endpoint.",
                )
        endpoint, container, entry = self._route(endpoint_id, deployed_id, invoke=invoke)
        self._limit(endpoint, len(raw))
        forward = {k: v for k, v in headers.items() if k.lower() in ("content-type", "accept")}
        conn = http.client.HTTPConnection("127.0.0.1", container.port, timeout=60)
        try:
            conn.request("POST", path or container.predict_route, body=raw, headers=forward)
            response = conn.getresponse()
        except OSError as exc:
            conn.close()
            raise ApiError("UNAVAILABLE", f"The model server is unavailable: {exc}") from None
        answer = {k.lower(): v for k, v in response.getheaders()}
        out = {"Content-Type": answer.get("content-type", "application/json")}
        if invoke:
            for key in ("x-endpointkit-version", "x-request-id"):
                if key in answer:
                    out[key] = answer[key]
        else:
            out["X-Vertex-AI-Endpoint-Id"] = endpoint_id
            out["X-Vertex-AI-Deployed-Model-Id"] = entry["id"]
        return conn, response, out

    # -- logging ---------------------------------------------------------------------------------

    def list_log_entries(self, body: dict[str, Any]) -> dict[str, Any]:
        text = body.get("filter", "")
        endpoint = re.search(r'resource\.labels\.endpoint_id\s*=\s*"([^"]+)"', text)
        deployed = re.search(r'resource\.labels\.deployed_model_id\s*=\s*"([^"]+)"', text)
        errors_only = re.search(r"severity\s*>=\s*ERROR", text) is not None
        since = re.search(r'timestamp\s*>=\s*"([^"]+)"', text)
        with self._lock:
            sources = list(self._stopped_logs) + [
                (c.endpoint_id, c.deployed_model_id, c.log_path) for c in self.containers.values()
            ]
        entries: list[dict[str, Any]] = []
        seen: set[Path] = set()
        for endpoint_id, dm_id, path in sources:
            if path in seen or not path.exists():
                continue
            seen.add(path)
            if endpoint and endpoint.group(1) != endpoint_id:
                continue
            if deployed and deployed.group(1) != dm_id:
                continue
            for line in path.read_text(errors="replace").splitlines():
                entry = _log_entry(line, self.project_number, self.location, endpoint_id, dm_id)
                if errors_only and entry["severity"] not in ("ERROR", "CRITICAL"):
                    continue
                if since and entry["timestamp"] < since.group(1):
                    continue
                entries.append(entry)
        entries.sort(key=lambda e: e["timestamp"], reverse="desc" in body.get("orderBy", ""))
        size = int(body.get("pageSize") or 50)
        return {"entries": entries[:size]} if entries else {}

    # -- GCS -------------------------------------------------------------------------------------

    def _object_path(self, bucket: str, name: str) -> Path:
        base = self.gcs_root / bucket
        if not base.is_dir():
            raise ApiError("NOT_FOUND", "The specified bucket does not exist.")
        path = (base / name).resolve()
        if not str(path).startswith(str(base.resolve())) or not name:
            raise ApiError("INVALID_ARGUMENT", f"Invalid object name {name!r}.")
        return path

    @staticmethod
    def _generation(path: Path) -> int:
        marker = path.with_name(path.name + ".generation")
        return int(marker.read_text()) if marker.exists() and path.exists() else 0

    def gcs_upload(self, bucket: str, query: dict[str, str], data: bytes) -> dict[str, Any]:
        name = query.get("name", "")
        with self._lock:
            path = self._object_path(bucket, name)
            current = self._generation(path)
            if "ifGenerationMatch" in query and int(query["ifGenerationMatch"]) != current:
                raise ApiError("FAILED_PRECONDITION", "Precondition Failed", http_status=412)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            generation = max(current, int(time.time() * 1e6)) + 1
            path.with_name(path.name + ".generation").write_text(str(generation))
        return {
            "bucket": bucket,
            "name": name,
            "size": str(len(data)),
            "generation": str(generation),
        }

    def gcs_get(self, bucket: str, name: str) -> tuple[bytes, int]:
        with self._lock:
            path = self._object_path(bucket, name)
            if not path.is_file():
                raise ApiError("NOT_FOUND", f"No such object: {bucket}/{name}")
            return path.read_bytes(), self._generation(path)

    def gcs_list(self, bucket: str, query: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            self._object_path(bucket, "x")
            names = self.gcs_objects(bucket, query.get("prefix", ""))
            items = [
                {
                    "bucket": bucket,
                    "name": n,
                    "generation": str(self._generation(self.gcs_root / bucket / n)),
                }
                for n in names
            ]
        return {"kind": "storage#objects", "items": items} if items else {"kind": "storage#objects"}

    def gcs_delete(self, bucket: str, name: str) -> None:
        with self._lock:
            path = self._object_path(bucket, name)
            if not path.is_file():
                raise ApiError("NOT_FOUND", f"No such object: {bucket}/{name}")
            path.unlink()
            path.with_name(path.name + ".generation").unlink(missing_ok=True)

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _check_labels(labels: dict[str, str]) -> None:
        for key, value in labels.items():
            if not LABEL_KEY.match(key) or not LABEL_VALUE.match(str(value)):
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f"Label {key}={value!r} is invalid: keys and values may contain only "
                    "lowercase letters, digits, '_' and '-' (at most 63 characters); keys start "
                    "with a letter.",
                )


# -- HTTP plumbing ---------------------------------------------------------------------------


def _camel(path: str) -> str:
    head, *rest = path.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _camel_path(path: str) -> str:
    return ".".join(_camel(p) for p in path.split("."))


def _parse_label_filter(text: str) -> dict[str, str]:
    return {
        key: value.strip('"')
        for key, value in re.findall(r'labels\.([a-z0-9_-]+)\s*=\s*("[^"]*"|[a-z0-9_-]+)', text)
    }


def _duration(value: Any, default: float) -> float:
    if isinstance(value, str) and value.endswith("s"):
        with contextlib.suppress(ValueError):
            return float(value[:-1])
    return default


def _http(
    port: int, method: str, path: str, body: bytes | None = None,
    headers: dict[str, str] | None = None, timeout: float = 60,
) -> tuple[int, bytes]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


def _forward(
    container: _Container, body: bytes, headers: dict[str, str], path: str | None = None
) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", container.port, timeout=60)
    try:
        conn.request("POST", path or container.predict_route, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, data, {k.lower(): v for k, v in response.getheaders()}
    except OSError as exc:
        raise ApiError("UNAVAILABLE", f"The model server is unavailable: {exc}") from None
    finally:
        conn.close()


def _log_entry(
    line: str, project_number: str, location: str, endpoint_id: str, dm_id: str
) -> dict[str, Any]:
    try:
        payload = json.loads(line)
    except ValueError:
        payload = None
    severity = "INFO"
    timestamp = _now()
    entry: dict[str, Any] = {
        "logName": f"projects/{project_number}/logs/{PREDICTION_LOG}",
        "resource": {
            "type": "aiplatform.googleapis.com/Endpoint",
            "labels": {
                "endpoint_id": endpoint_id,
                "deployed_model_id": dm_id,
                "location": location,
                "resource_container": project_number,
            },
        },
    }
    if isinstance(payload, dict):
        severity = str(payload.get("level", "info")).upper()
        if isinstance(payload.get("ts"), (int, float)):
            timestamp = (
                datetime.fromtimestamp(payload["ts"], timezone.utc)
                .isoformat(timespec="microseconds")
                .replace("+00:00", "Z")
            )
        entry["jsonPayload"] = payload
    else:
        if "Traceback" in line or "Error" in line:
            severity = "ERROR"
        entry["textPayload"] = line
    entry["severity"] = "ERROR" if severity in ("ERROR", "EXCEPTION") else severity
    entry["timestamp"] = timestamp
    return entry


def _raise(error: ApiError, *_: Any) -> None:
    raise error


_RESOURCE = r"/(?:v1|ui)/projects/([^/]+)/locations/([^/]+)"


class _Handler(BaseHTTPRequestHandler):
    fake: VertexFake
    protocol_version = "HTTP/1.1"
    _discard = False
    dropped = False  # the last request's connection was closed without an answer (Fault.drop)

    def setup(self) -> None:
        super().setup()
        # One response goes out in two writes (headers, body); without TCP_NODELAY, Nagle and
        # delayed ACKs add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; `fake.requests` records every call

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        if self._discard:  # a lost response (Fault.after): only the injected error goes out
            return
        self.send_response(status)
        headers = {"Content-Type": "application/json; charset=UTF-8", **(headers or {})}
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _relay(
        self,
        conn: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        headers: dict[str, str],
    ) -> None:
        """Answer with a container's response: a chunked one chunk by chunk as it arrives (a
        broken one is broken off here too), any other whole."""
        try:
            chunked = (response.getheader("transfer-encoding") or "").lower() == "chunked"
            if not chunked or self._discard:
                self._send(response.status, response.read(), headers)
                return
            self.send_response(response.status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while True:
                try:
                    data = response.read1(65536)
                except (http.client.HTTPException, OSError):
                    self.close_connection = True  # no last chunk: the client sees the break
                    return
                if not data:
                    break
                self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")
        finally:
            conn.close()

    def _json(self, payload: Any, status: int = 200) -> None:
        self._send(status, json.dumps(payload).encode())

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        rpc, handler = self._match(method, path)
        fake = self.fake
        with fake._lock:
            fake.requests.append((method, path, rpc))
            fault = next((f for f in fake.faults if f.matches(rpc)), None)
            if fault is not None:
                fault.fired += 1
            change = next((c for c in fake._interleaved if c[0] == rpc), None)
            if change is not None:
                fake._interleaved.remove(change)
        if change is not None:
            change[1]()
        try:
            if fault is not None and fault.after and handler is not None:
                self._discard = True  # the request takes effect; its answer is lost
                try:
                    with contextlib.suppress(ApiError):
                        handler(query, raw)
                finally:
                    self._discard = False
            if fault is not None and fault.drop:
                self.dropped = True
                self.close_connection = True  # no status line: the client sees a reset
                return
            if fault is not None:
                status = _STATUS_BY_HTTP.get(fault.http_status, "UNAVAILABLE")
                raise ApiError(
                    status,
                    fault.message or f"{status.replace('_', ' ').title()} (injected by the fake).",
                    http_status=fault.http_status,
                )
            if handler is None:
                raise ApiError("NOT_FOUND", f"No route for {method} {path}.", http_status=404)
            handler(query, raw)
        except ApiError as exc:
            self._json(exc.envelope(), exc.http_status)
        except (ValueError, KeyError, TypeError) as exc:
            self._json(ApiError("INVALID_ARGUMENT", f"Invalid request: {exc}").envelope(), 400)

    def _match(self, method: str, path: str) -> tuple[str, Any]:
        fake = self.fake

        def body(raw: bytes) -> Any:
            return json.loads(raw or b"{}")

        m = re.fullmatch(
            r"/(?:v1|ui)/(projects/[^/]+/locations/[^/]+/(?:[^:]+/)?operations/[^/:]+)", path
        )
        if m and method == "GET":
            name = m.group(1)
            return "GetOperation", lambda q, r: self._json(fake._op_view(name, poll=True))
        m = re.fullmatch(
            _RESOURCE + r"/endpoints/([^/:]+)(?:/deployedModels/([0-9]+))?/invoke(/.*)", path
        )
        if m and method == "POST":
            _, _, endpoint_id, deployed_id, subpath = m.groups()
            return "Invoke", lambda q, r: self._relay(
                *fake.open_stream(
                    endpoint_id, deployed_id, subpath, r, dict(self.headers.items()), invoke=True
                )
            )
        m = re.fullmatch(_RESOURCE + r"/endpoints(?:/([^/:]+))?(?::(\w+))?", path)
        if m:
            project, location, endpoint_id, verb = m.groups()
            try:
                fake._check_parent(project, location)
            except ApiError as exc:
                return "Denied", partial(_raise, exc)
            if endpoint_id is None:
                if method == "POST":
                    return "CreateEndpoint", lambda q, r: self._json(
                        fake.create_endpoint(q, body(r))
                    )
                if method == "GET":
                    return "ListEndpoints", lambda q, r: self._json(fake.list_endpoints(q))
            elif verb is None:
                if method == "GET":
                    return "GetEndpoint", lambda q, r: self._json(
                        fake._endpoint_view(fake._get_endpoint(endpoint_id))
                    )
                if method == "PATCH":
                    return "UpdateEndpoint", lambda q, r: self._json(
                        fake.update_endpoint(endpoint_id, q, body(r))
                    )
                if method == "DELETE":
                    return "DeleteEndpoint", lambda q, r: self._json(
                        fake.delete_endpoint(endpoint_id)
                    )
            elif method == "POST":
                if verb == "deployModel":
                    return "DeployModel", lambda q, r: self._json(
                        fake.deploy_model(endpoint_id, body(r))
                    )
                if verb == "undeployModel":
                    return "UndeployModel", lambda q, r: self._json(
                        fake.undeploy_model(endpoint_id, body(r))
                    )
                if verb == "mutateDeployedModel":
                    return "MutateDeployedModel", lambda q, r: self._json(
                        fake.mutate_deployed_model(endpoint_id, body(r))
                    )
                if verb == "predict":
                    return "Predict", lambda q, r: self._json(fake.predict(endpoint_id, r))
                if verb == "rawPredict":
                    return "RawPredict", lambda q, r: self._send(
                        *fake.raw_predict(endpoint_id, r, dict(self.headers.items()))
                    )
                if verb == "streamRawPredict":
                    return "StreamRawPredict", lambda q, r: self._relay(
                        *fake.open_stream(
                            endpoint_id, None, None, r, dict(self.headers.items()), invoke=False
                        )
                    )
        m = re.fullmatch(_RESOURCE + r"/models(?:/([^/:]+))?(?::(\w+))?", path)
        if m:
            project, location, model_ref, verb = m.groups()
            name = f"projects/{project}/locations/{location}/models/{model_ref}"
            if model_ref is None:
                if method == "GET":
                    return "ListModels", lambda q, r: self._json(fake.list_models(q))
                if method == "POST" and verb == "upload":
                    return "UploadModel", lambda q, r: self._json(fake.upload_model(body(r)))
            elif verb is None and method == "GET":
                return "GetModel", lambda q, r: self._json(fake.get_model(name))
            elif verb is None and method == "DELETE":
                return "DeleteModel", lambda q, r: self._json(
                    fake.delete_model(name, version_only=False)
                )
            elif verb == "listVersions" and method == "GET":
                return "ListModelVersions", lambda q, r: self._json(fake.list_versions(name))
            elif verb == "deleteVersion" and method == "DELETE":
                return "DeleteModelVersion", lambda q, r: self._json(
                    fake.delete_model(name, version_only=True)
                )
            elif verb == "mergeVersionAliases" and method == "POST":
                return "MergeVersionAliases", lambda q, r: self._json(
                    fake.merge_aliases(name, body(r))
                )
        if path == "/v2/entries:list" and method == "POST":
            return "ListLogEntries", lambda q, r: self._json(fake.list_log_entries(body(r)))
        m = re.fullmatch(r"/upload/storage/v1/b/([^/]+)/o", path)
        if m and method == "POST":
            bucket = m.group(1)

            def upload(q: dict[str, str], r: bytes) -> None:
                if q.get("uploadType") == "multipart":  # google-cloud-storage's small uploads
                    metadata, r = _multipart(self.headers.get("Content-Type", ""), r)
                    q = {**q, "name": str(metadata.get("name") or q.get("name", ""))}
                self._json(fake.gcs_upload(bucket, q, r))

            return "GcsUpload", upload
        # Object reads come on /storage/v1/... (JSON API) or /download/storage/v1/... (media).
        m = re.fullmatch(r"/(?:download/)?storage/v1/b/([^/]+)/o(?:/(.+))?", path)
        if m:
            bucket, name = m.groups()
            if name is None and method == "GET":
                return "GcsList", lambda q, r: self._json(fake.gcs_list(bucket, q))
            if name is not None and method == "GET":

                def get(q: dict[str, str], r: bytes) -> None:
                    data, generation = fake.gcs_get(bucket, name)
                    if q.get("alt") == "media":
                        self._send(
                            200,
                            data,
                            {
                                "Content-Type": "application/octet-stream",
                                "x-goog-generation": str(generation),
                            },
                        )
                    else:
                        self._json({"bucket": bucket, "name": name, "generation": str(generation)})

                return "GcsGet", get
            if name is not None and method == "DELETE":

                def delete(q: dict[str, str], r: bytes) -> None:
                    fake.gcs_delete(bucket, name)
                    self._send(204, b"")

                return "GcsDelete", delete
        return "Unknown", None


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes]:
    """The JSON metadata and the media of a multipart/related upload (uploadType=multipart):
    `--B\r\n<headers>\r\n\r\n<metadata>\r\n--B\r\n<headers>\r\n\r\n<media>\r\n--B--`."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if found is None:
        raise ApiError("INVALID_ARGUMENT", "multipart upload without a boundary.")
    sections = body.split(b"--" + found.group(1).encode())[1:-1]
    parts = [s.partition(b"\r\n\r\n")[2].removesuffix(b"\r\n") for s in sections]
    if len(parts) != 2:
        raise ApiError("INVALID_ARGUMENT", "multipart upload needs metadata and media parts.")
    return json.loads(parts[0]), parts[1]


@contextlib.contextmanager
def running_fake(root: Path, **options: Any) -> Iterator[VertexFake]:
    """Start a fake, yield it, and stop it (and every serving process) afterwards."""
    fake = VertexFake(root, **options).start()
    try:
        yield fake
    finally:
        fake.stop()
