"""Model Registry: a version is a Model version of the Model whose ID is the endpoint name.

The first version creates the Model, later ones upload with `parent_model`; the version alias
is the version name; labels carry the version name and spec hash; the version description holds
the VersionSpec as JSON. This module also builds the DeployedModel (machine, accelerators,
replicas, autoscaling metrics) that puts a version on an endpoint, and reads one back.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from endpointkit.adapters.vertex._clients import Connection
from endpointkit.adapters.vertex._errors import BACKEND
from endpointkit.adapters.vertex._health import (
    CONTAINER_PORT,
    HEALTH_ROUTE,
    apply_health,
    container_health,
)
from endpointkit.adapters.vertex._operations import Operations
from endpointkit.adapters.vertex._prebuilt import prebuilt_image, warn_ignored_probes
from endpointkit.errors import EndpointKitError, NotFound, ValidationError
from endpointkit.spec import Autoscaling, Scaling, VersionSpec
from endpointkit.state import VersionState

__all__ = [
    "ENDPOINT_LABEL",
    "HASH_LABEL",
    "MANAGED_BY",
    "PREDICT_ROUTE",
    "ModelRegistry",
    "Upload",
    "as_datetime",
    "live_scaling",
    "version_ref",
]

MANAGED_BY = ("managed-by", "endpointkit")
ENDPOINT_LABEL = "endpointkit-endpoint"
VERSION_LABEL = "endpointkit-version"
HASH_LABEL = "endpointkit-hash"
PREDICT_ROUTE = "/predict"  # endpointkit.serving's AIP_PREDICT_ROUTE default
CPU_METRIC = "aiplatform.googleapis.com/prediction/online/cpu/utilization"
REQUEST_METRIC = "aiplatform.googleapis.com/prediction/online/request_count"


@dataclass
class Upload:
    """A Model version upload of `version` on endpoint `endpoint`: its operation while it
    runs, then the version ID; `created` is False when a leftover version was reused."""

    endpoint: str
    version: str
    op: Any = None
    version_id: str | None = None
    created: bool = True


class ModelRegistry:
    """Model versions of endpointkit endpoints, and the DeployedModels that serve them."""

    def __init__(
        self,
        conn: Connection,
        operations: Operations,
        *,
        serving_image: str | None,
        machine_type: str,
        service_account: str | None,
        startup_probe: Mapping[str, int],
        health_probe: Mapping[str, int],
        deployment_timeout_s: int | None,
    ) -> None:
        self._conn = conn
        self._operations = operations
        self.serving_image = serving_image
        self.machine_type = machine_type
        self.service_account = service_account
        self.startup_probe = startup_probe
        self.health_probe = health_probe
        self.deployment_timeout_s = deployment_timeout_s
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, str], Any] = {}  # (model, version id) -> Model

    # -- DeployedModel ------------------------------------------------------------------------

    def deployed_model(self, version: VersionSpec) -> Any:
        """The DeployedModel for `version` (without its model name); ValidationError if invalid."""
        types = self._conn.types()
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
                    backend=BACKEND,
                    version=version.name,
                ) from None
            machine.accelerator_count = res.accelerator_count
        resources = types.DedicatedResources(
            machine_spec=machine,
            min_replica_count=res.min_replicas,
            max_replica_count=res.max_replicas or res.min_replicas,
            autoscaling_metric_specs=self.metric_specs(version.autoscaling),
        )
        deployed = types.DeployedModel(display_name=version.name, dedicated_resources=resources)
        if self.service_account:
            deployed.service_account = self.service_account
        return deployed

    def metric_specs(self, autoscaling: Autoscaling | None) -> list[Any]:
        """Autoscaling targets as Vertex AI metric specs (none: Vertex's default, CPU 60%)."""
        types = self._conn.types()
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

    def version_state(self, name: str, deployed: Any) -> VersionState:
        """A DeployedModel of endpoint `name` as a VersionState (spec and hash from its Model)."""
        spec_hash: str | None = None
        spec: VersionSpec | None = None
        with contextlib.suppress(NotFound):
            model = self.model_version(deployed.model, deployed.model_version_id, name)
            spec_hash = dict(model.labels).get(HASH_LABEL)
            with contextlib.suppress(ValueError):
                spec = VersionSpec.model_validate_json(model.version_description)
        resources = deployed.dedicated_resources
        return VersionState(
            name=deployed.display_name,
            spec_hash=spec_hash,
            spec=spec,
            replicas=int(resources.min_replica_count) or None,
            scaling=live_scaling(resources),
            created_at=as_datetime(deployed.create_time),
            details={
                "deployed_model_id": deployed.id,
                "model": deployed.model.partition("@")[0],
                "model_version_id": deployed.model_version_id,
                "machine_type": resources.machine_spec.machine_type,
            },
        )

    # -- Model versions -----------------------------------------------------------------------

    def model_version(self, model: str, version_id: str, endpoint: str) -> Any:
        """The Model version `model@version_id` (cached: versions are immutable); `model` may
        carry a version suffix already (DeployedModel.model does), which is dropped."""
        key = (model_id(model), version_id)
        cached = self._versions.get(key)
        if cached is None:
            cached = self._get(f"{self._conn.model_path(key[0])}@{version_id}", "get", endpoint)
            with self._lock:
                self._versions[key] = cached
        return cached

    def image_for(self, version: VersionSpec, endpoint: str, *, check: bool = False) -> str:
        """The version's image: a framework's prebuilt container, its own, or the default
        (`check`: warn about settings a prebuilt container cannot take)."""
        if version.framework is not None:
            if check:
                warn_ignored_probes(version, endpoint)
            return prebuilt_image(version, self._conn.location, endpoint=endpoint)
        return version.image or self.serving_image or ""

    def _serving_container(self, version: VersionSpec, env_vars: list[Any], dedicated: bool) -> Any:
        """The ModelContainerSpec of endpointkit's serving image (or the version's own)."""
        types = self._conn.types()
        container = types.ModelContainerSpec(
            image_uri=version.image or self.serving_image,
            health_route=HEALTH_ROUTE,
            ports=[types.Port(container_port=CONTAINER_PORT)],
            env=env_vars,
        )
        if dedicated:
            # Routes every container path (and so per-deployed-model calls); excludes
            # predict_route, and such a Model deploys only to dedicated endpoints.
            container.invoke_route_prefix = "/*"
        else:
            container.predict_route = PREDICT_ROUTE
        apply_health(
            container, version, self.startup_probe, self.health_probe, self.deployment_timeout_s
        )
        return container

    def start_upload(
        self, name: str, version: VersionSpec, artifact: str, *, dedicated: bool
    ) -> Upload:
        """Send the UploadModel request for `version` (a refusal raises here, before anything
        else changes); `finish_upload` waits for its operation.

        A leftover version with the same alias (an interrupted earlier attempt) is reused when
        its content hash matches and removed otherwise.
        """
        if version.framework is not None and dedicated:
            # Dedicated endpoints are invoked through the Invoke API, which needs the Model's
            # invoke_route_prefix and a container that serves those routes; a prebuilt one
            # serves only Vertex AI's predict route.
            raise ValidationError(
                f"version {version.name!r}: endpoint {name!r} is dedicated, and endpointkit "
                "invokes dedicated endpoints through the Invoke API, which a prebuilt "
                f"{version.framework} container does not serve; nothing was deployed.",
                hint="Deploy it to a shared endpoint (dedicated_endpoint=False), or serve the "
                "model in endpointkit's image (drop 'framework', set 'image' or serving_image).",
                backend=BACKEND,
                operation="deploy",
                endpoint=name,
                version=version.name,
            )
        types = self._conn.types()
        model_path = self._conn.model_path(name)
        existing = self.find_alias(name, version.name)
        if existing is not None:
            if dict(existing.labels).get(HASH_LABEL) == version.spec_hash:
                return Upload(name, version.name, version_id=existing.version_id, created=False)
            self.delete_version(name, f"{model_path}@{existing.version_id}")
        env = {**version.effective_env(), "ENDPOINTKIT_VERSION": version.name}
        env_vars = [types.EnvVar(name=k, value=v) for k, v in sorted(env.items())]
        if version.framework is not None:
            # A prebuilt container serves Vertex AI's default routes and port (AIP_*): only
            # the image and the environment are ours to set.
            container = types.ModelContainerSpec(
                image_uri=self.image_for(version, name), env=env_vars
            )
            _, _, timeout_s = container_health(version, {}, {}, self.deployment_timeout_s)
            if timeout_s:
                from google.protobuf import duration_pb2

                container.deployment_timeout = duration_pb2.Duration(seconds=timeout_s)
        else:
            container = self._serving_container(version, env_vars, dedicated)
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
        request = types.UploadModelRequest(parent=self._conn.parent, model=model)
        if self._find(model_path, "deploy", name) is not None:
            request.parent_model = model_path
        else:
            request.model_id = name

        def uploaded() -> Any:
            found = self.find_alias(name, version.name)
            return None if found is None else ("done", found.version_id)

        op = self._conn.call(
            "deploy",
            lambda: self._conn.client("models").upload_model(
                request=request, retry=None, timeout=self._conn.call_timeout_s
            ),
            endpoint=name,
            version=version.name,
            recheck=uploaded,
        )
        if isinstance(op, tuple):
            return Upload(name, version.name, version_id=op[1])
        return Upload(name, version.name, op=op)

    def finish_upload(self, upload: Upload) -> tuple[str, str | None]:
        """Wait for the upload; returns (model@version, the version it created or None)."""
        if upload.version_id is None:
            response = self._operations.wait(
                upload.op, "upload model", upload.endpoint, upload.version
            )
            upload.version_id = str(response.model_version_id)
            upload.op = None
        ref = f"{self._conn.model_path(upload.endpoint)}@{upload.version_id}"
        return ref, ref if upload.created else None

    def created_version(self, upload: Upload) -> str | None:
        """The Model version `upload` created (waiting for it if it still runs), or None: it
        reused a leftover version, or it failed and created none."""
        if not upload.created:
            return None
        try:
            return self.finish_upload(upload)[1]
        except EndpointKitError:
            return None

    def find_alias(self, name: str, alias: str) -> Any:
        """The Model version of endpoint `name` with `alias`, or None."""
        return self._find(f"{self._conn.model_path(name)}@{alias}", "deploy", name)

    def delete_version(self, name: str, ref: str) -> None:
        """Delete one Model version; the `default` alias moves to another version first."""
        models = self._conn.client("models")
        model_path, _, version_id = ref.partition("@")
        operation = "delete model version"
        target = self._find(ref, operation, name)
        if target is None:
            return
        versions = self._conn.call(
            operation,
            lambda: list(
                models.list_model_versions(
                    name=model_path, retry=None, timeout=self._conn.call_timeout_s
                )
            ),
            endpoint=name,
        )
        others = [v for v in versions if v.version_id != target.version_id]
        if not others:
            self._delete(model_path, "delete model", name)
            return
        if "default" in target.version_aliases:
            newest = f"{model_path}@{max(int(v.version_id) for v in others)}"

            def moved() -> Any:  # a retry looks first: the lost answer may have moved it
                found = self._look(newest)
                return found if found is not None and "default" in found.version_aliases else None

            self._conn.call(
                operation,
                lambda: models.merge_version_aliases(
                    name=newest,
                    version_aliases=["default"],
                    retry=None,
                    timeout=self._conn.call_timeout_s,
                ),
                endpoint=name,
                recheck=moved,
            )
        gone = f"{model_path}@{target.version_id}"
        self._operations.run(
            "models",
            "delete_model_version",
            {"name": gone},
            operation=operation,
            endpoint=name,
            done=lambda: self._look(gone) is None,
        )
        with self._lock:
            self._versions.pop((model_id(model_path), version_id), None)

    def delete_model(self, name: str) -> None:
        """Delete endpoint `name`'s Model with every version (nothing if there is none)."""
        self._delete(self._conn.model_path(name), "delete", name)

    def _delete(self, model_path: str, operation: str, endpoint: str) -> None:
        with contextlib.suppress(NotFound):  # already gone
            self._operations.run(
                "models",
                "delete_model",
                {"name": model_path},
                operation=operation,
                endpoint=endpoint,
                done=lambda: self._look(model_path) is None,
            )
        model = model_id(model_path)
        with self._lock:
            for key in [k for k in self._versions if k[0] == model]:
                del self._versions[key]

    def _get(self, ref: str, operation: str, endpoint: str) -> Any:
        return self._conn.call(
            operation,
            lambda: self._conn.client("models").get_model(
                name=ref, retry=None, timeout=self._conn.call_timeout_s
            ),
            endpoint=endpoint,
        )

    def _look(self, ref: str) -> Any:
        """GetModel `ref` once, as a retry's check does (None if it does not exist); other
        errors are raised as they are, for the caller's `Connection.call` to translate."""
        from google.api_core.exceptions import NotFound as GoogleNotFound

        try:
            return self._conn.client("models").get_model(
                name=ref, retry=None, timeout=self._conn.call_timeout_s
            )
        except GoogleNotFound:
            return None

    def _find(self, ref: str, operation: str, endpoint: str) -> Any:
        try:
            return self._get(ref, operation, endpoint)
        except NotFound:
            return None


def model_id(model: str) -> str:
    """The Model ID in a resource name, without any `@version` or `@alias` suffix."""
    return model.split("/")[-1].partition("@")[0]


def version_ref(model: str, version_id: str) -> str:
    """`model@version_id`. DeployedModel.model may already name a version ("The resource name
    may contain version id or version alias", aiplatform_v1 DeployedModel.model): the version
    is taken from `version_id` (modelVersionId, what it resolved to), never appended twice."""
    return f"{model.partition('@')[0]}@{version_id}"


def live_scaling(resources: Any) -> Scaling | None:
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


def as_datetime(value: Any) -> datetime | None:
    """proto-plus timestamps arrive as DatetimeWithNanoseconds; unset ones as epoch 0."""
    if isinstance(value, datetime) and value.timestamp() > 0:
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return None
