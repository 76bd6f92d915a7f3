"""The Vertex AI backend: the Backend primitives over the modules beside it.

Each concern lives in its own module: `_clients` (settings, credentials, the GAPIC, httpx and
Cloud Storage clients, one way to call), `_errors` (the one error table), `_operations`
(background changes and long-running operations), `_registry` (Model versions and
DeployedModels), `_storage` (staging and history), `_runtime` (invocation), `_health`
(probes) and `_logs` (container errors). This class reads endpoints and composes changes.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from endpointkit.adapters.base import Backend, Capability
from endpointkit.adapters.limits import VERTEX, VERTEX_DEDICATED
from endpointkit.adapters.vertex._clients import Connection
from endpointkit.adapters.vertex._health import probe_settings
from endpointkit.adapters.vertex._logs import container_errors, logs_url
from endpointkit.adapters.vertex._operations import Operations
from endpointkit.adapters.vertex._registry import (
    ENDPOINT_LABEL,
    MANAGED_BY,
    ModelRegistry,
    Upload,
    as_datetime,
    live_scaling,
    version_ref,
)
from endpointkit.adapters.vertex._runtime import (
    STREAM_HINT,
    TARGET_HINT,
    Runtime,
)
from endpointkit.adapters.vertex._storage import Storage
from endpointkit.adapters.vertex._traffic import update_split
from endpointkit.errors import (
    Conflict,
    DeploymentFailed,
    EndpointKitError,
    NotFound,
    SettingIgnoredWarning,
    Unsupported,
    ValidationError,
    warn_setting_ignored,
)
from endpointkit.invocation import InvokeRequest, InvokeResult, Prediction, StreamResult
from endpointkit.retry import Clock, Sleep
from endpointkit.spec import Autoscaling, Scaling, TrafficSplit, VersionSpec
from endpointkit.state import EndpointState, Event, Status, VersionState

__all__ = ["SettingIgnoredWarning", "VertexBackend"]

DEFAULT_LOCATION = "us-central1"
DEFAULT_MACHINE_TYPE = "n1-standard-2"  # Vertex's own default for a DeployedModel


#: Autoscaling fields Vertex AI cannot hold: DedicatedResources has replica counts and
#: autoscalingMetricSpecs (metric + target) only (research/vertex.md 2.4).
_COOLDOWNS = ("scale_in_cooldown_s", "scale_out_cooldown_s")


class VertexBackend(Backend):
    """Vertex AI endpoints through the aiplatform_v1 GAPIC clients (see the package docstring).

    With `dedicated_endpoint=True` the instance can also pin versions and stream, and accepts
    requests up to 10 MB: its `capabilities` and `max_payload_bytes` follow the setting.
    """

    name = "vertex"
    capabilities = VERTEX.capabilities
    max_payload_bytes = VERTEX.max_payload_bytes
    max_custom_attributes = VERTEX.max_custom_attributes
    unsupported_reasons = VERTEX.unsupported_reasons  # no asynchronous invocation online

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
        sleep: Sleep = time.sleep,
    ) -> None:
        self.dedicated_endpoint = dedicated_endpoint
        if dedicated_endpoint:
            self.capabilities = VERTEX_DEDICATED.capabilities
            self.max_payload_bytes = VERTEX_DEDICATED.max_payload_bytes
        self.location = (
            location
            or os.environ.get("GOOGLE_CLOUD_REGION")
            or (os.environ.get("CLOUD_ML_REGION") or DEFAULT_LOCATION)
        )
        self._conn = Connection(
            project=project or os.environ.get("GOOGLE_CLOUD_PROJECT") or None,
            location=self.location,
            credentials=credentials,
            api_endpoint=api_endpoint,
            transport=transport,
            storage_endpoint=storage_endpoint,
            logging_endpoint=logging_endpoint,
            call_timeout_s=call_timeout_s,
            retry_attempts=retry_attempts,
            sleep=sleep,
        )
        self.api_endpoint = self._conn.api_endpoint
        self.transport = self._conn.transport
        self.call_timeout_s = call_timeout_s
        self._storage = Storage(
            self._conn, staging_bucket or os.environ.get("ENDPOINTKIT_VERTEX_STAGING_BUCKET")
        )
        self._operations = Operations(
            self._conn, record=self._storage.record, poll=self._poll, lro_timeout_s=lro_timeout_s
        )
        self._registry = ModelRegistry(
            self._conn,
            self._operations,
            serving_image=serving_image or os.environ.get("ENDPOINTKIT_VERTEX_SERVING_IMAGE"),
            machine_type=machine_type,
            service_account=service_account,
            startup_probe=probe_settings("startup_probe", startup_probe),
            health_probe=probe_settings("health_probe", health_probe),
            deployment_timeout_s=deployment_timeout_s,
        )
        self._runtime = Runtime(self._conn, dedicated=dedicated_endpoint, refresh=self.get)
        self._last_read = threading.local()  # see _read_for_change

    # -- settings -----------------------------------------------------------------------------

    @property
    def project(self) -> str:
        return self._conn.project

    @property
    def parent(self) -> str:
        return self._conn.parent

    @property
    def lro_timeout_s(self) -> float:
        return self._operations.lro_timeout_s

    def _endpoint_path(self, name: str) -> str:
        return self._conn.endpoint_path(name)

    def _plaintext_grpc(self) -> bool:
        return self._conn.plaintext_grpc()

    def close(self) -> None:
        """Wait for running changes, then close the clients."""
        self._operations.close()
        self._conn.close()

    # -- reading ------------------------------------------------------------------------------

    def _fetch(self, name: str, operation: str) -> Any:
        """The raw Endpoint proto, or NotFound (also for endpoints endpointkit did not create)."""
        try:
            endpoint = self._conn.call(
                operation,
                lambda: self._conn.client("endpoints").get_endpoint(
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

    def _state(self, name: str, endpoint: Any) -> EndpointState:
        ids: dict[str, str] = {}
        versions: list[VersionState] = []
        for deployed in endpoint.deployed_models:
            ids[deployed.id] = deployed.display_name
            versions.append(self._registry.version_state(name, deployed))
        dns = endpoint.dedicated_endpoint_dns if endpoint.dedicated_endpoint_enabled else ""
        self._runtime.remember(name, ids, dns)
        traffic = {ids[k]: int(v) for k, v in dict(endpoint.traffic_split).items() if k in ids}
        split = TrafficSplit(
            {**dict.fromkeys(ids.values(), 0), **traffic} if any(traffic.values()) else {}
        )
        pending = self._operations.running(name)
        failure = self._operations.failure(name)
        if pending is not None:
            status, raw = pending.status, pending.describe()
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
            created_at=as_datetime(endpoint.create_time),
            updated_at=as_datetime(endpoint.update_time),
            url=f"{self._conn.rest_base}/v1/{self._endpoint_path(name)}:rawPredict",
            details={
                "resource": endpoint.name,
                "deployed_model_ids": {v: k for k, v in ids.items()},
                "labels": dict(endpoint.labels),
                "log_hint": logs_url(self._conn.known_project, name),
                "dedicated_endpoint_dns": dns or None,
                "etag": endpoint.etag,
            },
        )

    def _without_versions(self, name: str, failure: str | None) -> tuple[Status, str, str | None]:
        """Status of an endpoint with no DeployedModel: its first deploy failed, or it is still
        running in another process (its history says which; a creation older than
        `lro_timeout_s` is taken as interrupted)."""
        if failure is None and self._storage.bucket is not None:
            with contextlib.suppress(EndpointKitError):
                found = self._storage.read_history(name)
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
        state = self._state(name, self._fetch(name, "get"))
        self._last_read.state = state
        return state

    def _read_for_change(self, name: str) -> EndpointState:
        """The state this thread just read to decide a change (the base class reads it right
        before calling `_set_traffic`), so the write is conditional on what the decision saw
        (its etag); a fresh read if there is none. Taken once: never reused later."""
        state: EndpointState | None = getattr(self._last_read, "state", None)
        self._last_read.state = None
        if state is None or state.name != name:
            state = self.get(name)
            self._last_read.state = None
        return state

    def list_endpoints(self) -> list[EndpointState]:
        def fetch() -> list[Any]:
            pager = self._conn.client("endpoints").list_endpoints(
                request={
                    "parent": self.parent,
                    "filter": f'labels.{MANAGED_BY[0]}="{MANAGED_BY[1]}"',
                },
                retry=None,
                timeout=self.call_timeout_s,
            )
            return list(pager)

        states = [
            self._state(endpoint.name.split("/")[-1], endpoint)
            for endpoint in self._conn.call("list", fetch)
            if dict(endpoint.labels).get(MANAGED_BY[0]) == MANAGED_BY[1]
        ]
        return sorted(states, key=lambda s: s.name)

    def history(self, name: str) -> list[Event]:
        if self._storage.bucket is not None:
            found = self._storage.read_history(name)
            if found is not None:
                return found[0]
        endpoint = self._fetch(name, "history")  # NotFound if it never existed
        events = [
            Event(
                time=as_datetime(endpoint.create_time) or _now(),
                endpoint=name,
                kind="created",
                message="endpoint created (derived: no staging bucket for history)",
            )
        ]
        for deployed in sorted(
            endpoint.deployed_models, key=lambda d: as_datetime(d.create_time) or _now()
        ):
            events.append(
                Event(
                    time=as_datetime(deployed.create_time) or _now(),
                    endpoint=name,
                    kind="deployed",
                    version=deployed.display_name,
                    message=f"deployed model {deployed.id}",
                )
            )
        return events

    def exists(self, name: str) -> bool:
        if self._operations.running(name, Status.DELETING) is not None:
            return True
        return super().exists(name)

    def wait_deleted(
        self,
        name: str,
        *,
        timeout: float = 1800.0,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Let this process's delete end first (a delete that stopped raises Conflict with its
        cause at once), then as the base."""
        clock = clock or self.clock
        deadline = clock() + timeout
        failure = self._operations.join(name, Status.DELETING, timeout)
        if failure:
            raise Conflict(
                f"deleting endpoint {name!r} on {self.name} stopped: {failure}",
                hint="Fix the cause and run delete again; it resumes where it stopped.",
                backend=self.name,
                operation="delete",
                endpoint=name,
            )
        remaining = max(deadline - clock(), 0.0)
        super().wait_deleted(name, timeout=remaining, sleep=sleep, clock=clock)

    # -- changes ------------------------------------------------------------------------------

    def _validate_version(self, endpoint: str, version: VersionSpec) -> None:
        """The base checks, then what Vertex AI needs before any call: an image to run."""
        super()._validate_version(endpoint, version)
        self._warn_ignored(version.autoscaling, endpoint, version.name)
        if version.framework is not None:
            self._registry.image_for(version, endpoint, check=True)  # or refused: needs code
            return
        if not (version.image or self._registry.serving_image):
            # UploadModel requires containerSpec.imageUri; there is no default image to fall
            # back on (research/vertex.md 1.6: an Artifact Registry image in the Model's region).
            raise ValidationError(
                f"version {version.name!r} names no serving image and the vertex backend has no "
                "'serving_image' setting, so Vertex AI would have no container to run; nothing "
                "was sent.",
                hint="Push the endpointkit serving image to Artifact Registry in "
                f"{self.location} and set serving_image=<image URI> (--set serving_image=..., "
                "or ENDPOINTKIT_VERTEX_SERVING_IMAGE), or give the version an 'image'.",
                backend=self.name,
                operation="deploy",
                endpoint=endpoint,
                version=version.name,
            )

    def _create(self, name: str, version: VersionSpec, tags: Mapping[str, str]) -> EndpointState:
        deployed = self._registry.deployed_model(version)  # validates before any change
        # The Model version first: a refused upload leaves no empty endpoint behind.
        upload = self._start_upload(name, version, dedicated=self.dedicated_endpoint)
        try:
            self._create_endpoint(name, tags)
        except EndpointKitError:
            self._undo_upload(name, version, upload)
            raise
        self._storage.record(
            name, "created", version=version.name, message="endpoint created", fresh=True
        )
        split = TrafficSplit({version.name: 100})

        def work() -> None:
            self._deploy_version(name, version, deployed, upload, split, {})

        self._operations.start(name, Status.CREATING, f"create {name} with {version.name}", work)
        return self.get(name)

    def _create_endpoint(self, name: str, tags: Mapping[str, str]) -> None:
        """CreateEndpoint `name`, labelled as endpointkit's, and wait for it."""
        types = self._conn.types()
        labels = {**dict(tags), MANAGED_BY[0]: MANAGED_BY[1], ENDPOINT_LABEL: name}
        path = self._endpoint_path(name)
        endpoints = self._conn.client("endpoints")

        def existing() -> Any:
            try:
                return endpoints.get_endpoint(name=path, retry=None)
            except Exception:
                return None

        op = self._conn.call(
            "create",
            lambda: endpoints.create_endpoint(
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
            self._operations.wait(op, "create", name)

    def _deploy(
        self, name: str, version: VersionSpec, traffic: TrafficSplit, **options: Any
    ) -> EndpointState:
        deployed = self._registry.deployed_model(version)
        state = self.get(name)
        ids = dict(state.details["deployed_model_ids"])
        upload = self._start_upload(name, version, dedicated=self._runtime.is_dedicated(name))

        def work() -> None:
            self._deploy_version(
                name, version, deployed, upload, traffic, ids, before=state.traffic
            )

        self._operations.start(name, Status.UPDATING, f"deploy {version.name}", work)
        return self.get(name)

    def _deploy_version(
        self,
        name: str,
        version: VersionSpec,
        deployed: Any,
        upload: Upload,
        traffic: TrafficSplit,
        ids: Mapping[str, str],
        before: TrafficSplit | None = None,
    ) -> None:
        """Wait for the Model version's upload, deploy it with the split; undo the upload on
        failure."""
        started = _now()
        split = {("0" if v == version.name else ids[v]): p for v, p in traffic.items() if p > 0}
        endpoint_path = self._endpoint_path(name)
        endpoints = self._conn.client("endpoints")

        def already_deployed() -> Any:
            current = endpoints.get_endpoint(name=endpoint_path, retry=None)
            return next(
                (d for d in current.deployed_models if d.display_name == version.name), None
            )

        try:
            deployed.model = self._registry.finish_upload(upload)[0]
            op = self._conn.call(
                "deploy",
                lambda: endpoints.deploy_model(
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
                result = self._operations.wait(op, "deploy", name, version.name)
                result_id = result.deployed_model.id
        except EndpointKitError as exc:
            left = self._undo_upload(name, version, upload)
            reason = self._failure_reason(name, exc, started, left)
            self._storage.record(name, "failed", version=version.name, message=reason)
            raise DeploymentFailed(
                f"deploying version {version.name!r} to endpoint {name!r} on Vertex AI failed: "
                f"{reason}",
                reason=reason,
                log_hint=logs_url(self._conn.known_project, name),
                backend=self.name,
                operation="deploy",
                endpoint=name,
                version=version.name,
                provider_code=exc.provider_code,
            ) from exc
        self._storage.record(
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
        lines = container_errors(self._conn, name, started)
        if lines:
            reason += " Last container errors: " + " | ".join(lines)
        if left:
            reason += f" {left}"
        return reason

    def _start_upload(self, name: str, version: VersionSpec, *, dedicated: bool) -> Upload:
        """Stage the model directory and send the UploadModel request; if either is refused,
        what was staged is removed again before the error is raised."""
        try:
            artifact = self._storage.stage(name, version)
            return self._registry.start_upload(name, version, artifact, dedicated=dedicated)
        except EndpointKitError:
            with contextlib.suppress(EndpointKitError):  # the refusal is the error to report
                self._storage.delete_staged(name, version)
            raise

    def _undo_upload(self, name: str, version: VersionSpec, upload: Upload) -> str:
        """Delete the Model version this change uploaded (once its upload ends) and the staged
        model directory; say what was removed, or what could not be."""
        uploaded = self._registry.created_version(upload)
        try:
            if uploaded is not None:
                self._registry.delete_version(name, uploaded)
            self._storage.delete_staged(name, version)
        except EndpointKitError as exc:
            what = f"model version {uploaded}" if uploaded else "staged model directory"
            return f"The uploaded {what} could not be removed ({exc}); delete it yourself."
        if uploaded is None:
            return ""
        return "The uploaded model version was removed; the traffic split is unchanged."

    def _undeploy(self, name: str, version: str, traffic: TrafficSplit) -> EndpointState:
        state = self.get(name)
        ids = dict(state.details["deployed_model_ids"])
        target = state.version(version)
        assert target is not None  # the base checked it is deployed
        split = {ids[v]: p for v, p in traffic.items() if p > 0 and v != version}

        def work() -> None:
            self._undeploy_model(name, ids[version], version, "undeploy", split)
            model = version_ref(target.details["model"], target.details["model_version_id"])
            self._registry.delete_version(name, model)
            if target.spec is not None:
                self._storage.delete_staged(name, target.spec)
            self._storage.record(
                name,
                "undeployed",
                version=version,
                message=f"undeployed deployed model {ids[version]}",
                before=state.traffic,
                after=traffic,
            )

        self._operations.start(name, Status.UPDATING, f"undeploy {version}", work)
        return self.get(name)

    def _undeploy_model(
        self,
        name: str,
        deployed_id: str,
        version: str,
        operation: str,
        split: Mapping[str, int] | None = None,
    ) -> None:
        """Undeploy one DeployedModel (with the split left for the others) and wait for it.

        A retry first looks whether the DeployedModel is gone already: an UndeployModel whose
        answer was lost would otherwise be sent again and refused NOT_FOUND.
        """
        request = {
            "endpoint": self._endpoint_path(name),
            "deployed_model_id": deployed_id,
            "traffic_split": split,
        }
        self._operations.run(
            "endpoints",
            "undeploy_model",
            request,
            operation=operation,
            endpoint=name,
            version=version,
            done=lambda: deployed_id not in self._deployed(name),
        )

    def _look(self, name: str) -> Any:
        """GetEndpoint once, as a retry's check does (None if it does not exist); other errors
        are raised as they are, for the caller's `Connection.call` to translate."""
        from google.api_core.exceptions import NotFound as GoogleNotFound

        try:
            return self._conn.client("endpoints").get_endpoint(
                name=self._endpoint_path(name), retry=None, timeout=self.call_timeout_s
            )
        except GoogleNotFound:
            return None

    def _deployed(self, name: str) -> dict[str, Any]:
        """The DeployedModels on endpoint `name` now, by ID (none if it is gone)."""
        endpoint = self._look(name)
        return {} if endpoint is None else {d.id: d for d in endpoint.deployed_models}

    def _warn_ignored(self, autoscaling: Autoscaling | None, endpoint: str, version: str) -> None:
        """Warn (SettingIgnoredWarning) about the cooldowns `autoscaling` sets explicitly."""
        asked = [f for f in _COOLDOWNS if autoscaling and f in autoscaling.model_fields_set]
        if asked:
            warn_setting_ignored(
                f"autoscaling {' and '.join(asked)} of version {version!r} on endpoint "
                f"{endpoint!r} is not applied: the vertex backend cannot hold cooldowns "
                "(Vertex AI autoscaling takes only replica counts and metric targets)."
            )

    def scale(self, name: str, version: str, scaling: Scaling) -> EndpointState:
        """As the base; cooldowns in `scaling` are warned about and left out."""
        self._warn_ignored(scaling.autoscaling, name, version)
        return super().scale(name, version, scaling)

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
        types = self._conn.types()
        deployed = types.DeployedModel(
            id=state.details["deployed_model_ids"][version],
            dedicated_resources=types.DedicatedResources(
                min_replica_count=scaling.min_replicas,
                max_replica_count=scaling.max_replicas,
                autoscaling_metric_specs=self._registry.metric_specs(scaling.autoscaling),
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
        wanted = self.held_scaling(scaling)

        def scaled() -> bool:  # a retry looks first: the lost answer may have scaled it
            current = self._deployed(name).get(deployed.id)
            return current is not None and live_scaling(current.dedicated_resources) == wanted

        def work() -> None:
            self._operations.run(
                "endpoints",
                "mutate_deployed_model",
                {
                    "endpoint": self._endpoint_path(name),
                    "deployed_model": deployed,
                    "update_mask": mask,
                },
                operation="scale",
                endpoint=name,
                version=version,
                done=scaled,
            )
            self._storage.record(
                name,
                "scaled",
                version=version,
                message=f"scaled from {live.describe() if live else 'unknown'} to "
                f"{scaling.describe()} in place (MutateDeployedModel)",
            )

        self._operations.start(name, Status.UPDATING, f"scale {version}", work)
        return self.get(name)

    def _set_traffic(self, name: str, traffic: TrafficSplit) -> EndpointState:
        """Read-modify-write: UpdateEndpoint carries the etag of the state the change was
        decided on, so a change another writer made since is refused, not overwritten."""
        state = self._read_for_change(name)
        ids = dict(state.details["deployed_model_ids"])
        split = {ids[v]: p for v, p in traffic.items() if p > 0}
        self._update_split(name, split, read=state)
        self._operations.clear_failure(name)
        self._storage.record(
            name, "traffic", message="traffic changed", before=state.traffic, after=traffic
        )
        return self.get(name)

    def _update_split(
        self, name: str, split: Mapping[str, int], *, read: EndpointState | None = None
    ) -> Any:
        """UpdateEndpoint(trafficSplit), conditional on `read`'s etag (see _traffic)."""
        return update_split(
            self._conn,
            name,
            self._endpoint_path(name),
            split,
            read=read,
            timeout=self.call_timeout_s,
            reread=lambda: self.get(name),
        )

    def delete(self, name: str) -> None:
        endpoint = self._fetch(name, "delete")
        deployed = [(d.id, d.display_name) for d in endpoint.deployed_models]

        def work() -> None:
            if dict(endpoint.traffic_split):
                self._update_split(name, {})  # blind: whatever the split now, it goes
            for deployed_id, version in deployed:
                self._undeploy_model(name, deployed_id, version, "delete")
            self._operations.run(
                "endpoints",
                "delete_endpoint",
                {"name": self._endpoint_path(name)},
                operation="delete",
                endpoint=name,
                done=lambda: self._look(name) is None,
            )
            self._registry.delete_model(name)
            self._storage.delete_staged(name, None)
            self._runtime.forget(name)
            self._storage.record(name, "deleted", message="endpoint deleted")

        self._operations.start(name, Status.DELETING, f"delete {name}", work)

    # -- invocation ---------------------------------------------------------------------------

    def _unsupported(self, capability: Capability, operation: str, endpoint: str) -> Unsupported:
        error = super()._unsupported(capability, operation, endpoint)
        if capability is Capability.TARGET_VERSION:
            error.hint = TARGET_HINT
        elif capability is Capability.SHADOW:
            error.hint = (
                "Vertex AI has no traffic mirroring; run the candidate at a small traffic share "
                "(canary) instead, or use the sagemaker, local or mock backend for shadows."
            )
        elif capability is Capability.STREAMING:
            error.hint = STREAM_HINT
        return error

    def _invoke(self, request: InvokeRequest) -> InvokeResult:
        return self._runtime.invoke(request)

    def _invoke_stream(self, request: InvokeRequest) -> StreamResult:
        return self._runtime.invoke_stream(request)

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
        return self._runtime.predict(name, instances, parameters, timeout)


class VertexDedicatedBackend(VertexBackend):
    """Deprecated: use `VertexBackend(dedicated_endpoint=True)`."""

    def __init__(self, **settings: Any) -> None:
        warnings.warn(
            "VertexDedicatedBackend is deprecated; use VertexBackend(dedicated_endpoint=True).",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(**{**settings, "dedicated_endpoint": True})


def _now() -> datetime:
    return datetime.now(timezone.utc)
