"""The SageMaker backend: control plane, waiting, invocation.

Resources it creates, all tagged `managed-by=endpointkit` plus `endpointkit:endpoint`:

- a Model per version, `<endpoint>-<version>-<spec hash>`, whose container gets the version's
  environment and `ENDPOINTKIT_VERSION`; a local model directory is packed into a reproducible
  model.tar.gz and uploaded to `s3://<artifact bucket>/<prefix>/<endpoint>/artifacts/...`;
- an EndpointConfig per change of the variant set, `<endpoint>-c<digest of its content>`, so a
  retried or repeated create finds the one already there; superseded configs and models are
  deleted once a change has succeeded, keeping `keep_configs` configs for rollback;
- the Endpoint, whose `endpointkit:history` tag points at its history document
  (`_history.py`).

Every change is validated before the first call. Calls go through `aws_errors` (botocore never
leaks) and the `retry.control_plane` policy (jittered backoff on Throttled/Unavailable only);
botocore's own retries are off so the policy and its deadline are the only ones.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from endpointkit.adapters.base import Backend, Capability
from endpointkit.adapters.sagemaker._artifacts import pack_model, split_s3_uri
from endpointkit.adapters.sagemaker._errors import BACKEND, aws_errors, log_group
from endpointkit.adapters.sagemaker._history import HistoryDoc, Pending
from endpointkit.adapters.sagemaker._naming import (
    ENDPOINT_TAG,
    HASH_TAG,
    HISTORY_TAG,
    MANAGED_BY,
    MANAGED_TAG,
    VERSION_TAG,
    config_name,
    hash_from_model_name,
    model_name,
    owned_prefix,
    tags_dict,
    tags_list,
)
from endpointkit.errors import (
    AlreadyExists,
    Conflict,
    EndpointKitError,
    MissingDependency,
    NotFound,
    NotReady,
    PermissionDenied,
    Timeout,
    ValidationError,
)
from endpointkit.invocation import JSON, InvokeRequest, InvokeResult, StreamResult
from endpointkit.retry import control_plane, poll_until
from endpointkit.spec import Autoscaling, Scaling, Shadow, TrafficSplit, VersionSpec
from endpointkit.state import EndpointState, Event, Status, VersionState

__all__ = ["AsyncInvocation", "DeploymentConfig", "SageMakerBackend"]

T = TypeVar("T")
log = logging.getLogger("endpointkit.sagemaker")

MAX_PAYLOAD = 6 * 1024 * 1024
MAX_ASYNC_PAYLOAD = 1024 * 1024 * 1024
#: SageMaker allows 60 s per real-time invocation; the client waits a little longer.
RUNTIME_READ_TIMEOUT_S = 70.0
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
#: Serverless containers must download the model and answer /ping within 3 minutes, a fixed
#: budget: ProductionVariant's startup timeouts are for instance-backed variants
#: (docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-invoke.html).
SERVERLESS_STARTUP_S = 180


def container_environment(version: VersionSpec) -> dict[str, str]:
    """The model container's environment: the version's env plus its name."""
    return {**version.effective_env(), "ENDPOINTKIT_VERSION": version.name}


def production_variant(
    version: VersionSpec, model: str, weight: float, instance_type: str = DEFAULT_INSTANCE_TYPE
) -> dict[str, Any]:
    """A ProductionVariant (API shape) for `version`: serverless or instance-backed.

    The one place the rule lives; `endpointkit.terraform` converts it to the aws provider's
    attribute names.
    """
    variant: dict[str, Any] = {
        "VariantName": version.name,
        "ModelName": model,
        "InitialVariantWeight": float(weight),
    }
    if version.serverless is not None:
        serverless: dict[str, Any] = {
            "MemorySizeInMB": version.serverless.memory_mb,
            "MaxConcurrency": version.serverless.max_concurrency,
        }
        if version.serverless.provisioned_concurrency:
            serverless["ProvisionedConcurrency"] = version.serverless.provisioned_concurrency
        variant["ServerlessConfig"] = serverless
    else:
        variant["InstanceType"] = version.resources.instance_type or instance_type
        variant["InitialInstanceCount"] = version.resources.min_replicas
        startup = version.health.startup_timeout_s if version.health else None
        if startup is not None:
            # The budget bounds each phase: fetching and unpacking the model, then the
            # container's first 200 on /ping. Serverless variants take neither field (their
            # budget is a fixed 3 minutes for both). SageMaker's pings of running containers
            # are not configurable, so the health check's other fields are not used.
            variant["ModelDataDownloadTimeoutInSeconds"] = startup
            variant["ContainerStartupHealthCheckTimeoutInSeconds"] = startup
    return variant


SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
_INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
_CPU_METRIC = "CPUUtilization"
_POLICY_CONFIGS = (
    "TargetTrackingScalingPolicyConfiguration",
    "StepScalingPolicyConfiguration",
    "PredictiveScalingPolicyConfiguration",
)
_ACCELERATED_FAMILIES = ("p", "g", "inf", "trn", "dl")

_STATUS: dict[str, Status] = {
    "Creating": Status.CREATING,
    "Updating": Status.UPDATING,
    "SystemUpdating": Status.UPDATING,
    "RollingBack": Status.UPDATING,
    "InService": Status.IN_SERVICE,
    "Deleting": Status.DELETING,
    "Failed": Status.FAILED,
    "UpdateRollbackFailed": Status.FAILED,
    "OutOfService": Status.FAILED,
}
_SETTLED = frozenset({"InService", "Failed", "UpdateRollbackFailed", "OutOfService"})
_VARIANT_STATUS: dict[str, Status] = {
    "Creating": Status.CREATING,
    "Updating": Status.UPDATING,
    "ActivatingTraffic": Status.UPDATING,
    "Baking": Status.UPDATING,
    "Deleting": Status.DELETING,
}
_ERROR_LINE = re.compile(r"error|exception|traceback|failed", re.IGNORECASE)


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- options ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeploymentConfig:
    """SageMaker deployment guardrails for UpdateEndpoint (native canary, linear, rolling).

    `mode`: all_at_once, canary (shift `step_percent` of capacity, bake `wait_s`, then the
    rest), linear (shift `step_percent` per step, baking `wait_s` between steps) or rolling
    (replace `step_percent` of instances per batch). Any alarm in `alarms` going off during the
    bake rolls the update back. SageMaker's own limits are checked here, before any call.
    """

    mode: Literal["all_at_once", "canary", "linear", "rolling"] = "all_at_once"
    step_percent: int | None = None
    wait_s: int = 0
    termination_wait_s: int = 0
    max_execution_s: int | None = None
    alarms: tuple[str, ...] = ()
    rollback_batch_percent: int | None = None

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.mode in ("canary", "linear", "rolling") and self.step_percent is None:
            problems.append(f"{self.mode} needs step_percent")
        if self.step_percent is not None and not 1 <= self.step_percent <= 100:
            problems.append("step_percent must be 1-100")
        if self.mode == "canary" and (self.step_percent or 0) > 50:
            problems.append("a canary should be at most 50% of the new fleet")
        if self.mode == "rolling" and not 5 <= (self.step_percent or 5) <= 50:
            problems.append("rolling batches must be 5-50% of the instances")
        if not 0 <= self.wait_s <= 3600:
            problems.append("wait_s must be 0-3600")
        if not 0 <= self.termination_wait_s <= 3600:
            problems.append("termination_wait_s must be 0-3600")
        if self.max_execution_s is not None and not 600 <= self.max_execution_s <= 28800:
            problems.append("max_execution_s must be 600-28800")
        if len(self.alarms) > 10:
            problems.append("at most 10 alarms")
        if problems:
            raise ValidationError(
                f"invalid SageMaker deployment config: {'; '.join(problems)}.",
                hint="See SageMaker's BlueGreenUpdatePolicy / RollingUpdatePolicy limits.",
                backend=BACKEND,
            )

    @classmethod
    def coerce(cls, value: DeploymentConfig | Mapping[str, Any] | None) -> DeploymentConfig | None:
        if value is None or isinstance(value, DeploymentConfig):
            return value
        data = dict(value)
        if "alarms" in data:
            data["alarms"] = tuple(data["alarms"])
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValidationError(f"invalid deployment_config {data}: {exc}.") from None

    def to_api(self) -> dict[str, Any]:
        """The `DeploymentConfig` request structure."""
        config: dict[str, Any] = {}
        if self.mode == "rolling":
            rolling: dict[str, Any] = {
                "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": self.step_percent},
                "WaitIntervalInSeconds": self.wait_s,
            }
            if self.max_execution_s is not None:
                rolling["MaximumExecutionTimeoutInSeconds"] = self.max_execution_s
            if self.rollback_batch_percent is not None:
                rolling["RollbackMaximumBatchSize"] = {
                    "Type": "CAPACITY_PERCENT",
                    "Value": self.rollback_batch_percent,
                }
            config["RollingUpdatePolicy"] = rolling
        else:
            routing: dict[str, Any] = {
                "Type": self.mode.upper(),
                "WaitIntervalInSeconds": self.wait_s,
            }
            step = {"Type": "CAPACITY_PERCENT", "Value": self.step_percent}
            if self.mode == "canary":
                routing["CanarySize"] = step
            elif self.mode == "linear":
                routing["LinearStepSize"] = step
            blue_green: dict[str, Any] = {
                "TrafficRoutingConfiguration": routing,
                "TerminationWaitInSeconds": self.termination_wait_s,
            }
            if self.max_execution_s is not None:
                blue_green["MaximumExecutionTimeoutInSeconds"] = self.max_execution_s
            config["BlueGreenUpdatePolicy"] = blue_green
        if self.alarms:
            config["AutoRollbackConfiguration"] = {
                "Alarms": [{"AlarmName": alarm} for alarm in self.alarms]
            }
        return config


@dataclass
class AsyncInvocation:
    """A queued asynchronous request: poll `done()`, then `result()` reads the output."""

    backend: SageMakerBackend = field(repr=False)
    endpoint: str
    inference_id: str
    output_location: str
    failure_location: str | None = None

    def done(self) -> bool:
        """True once SageMaker has written the output (or the failure)."""
        return self.backend._s3_exists(self.output_location) or (
            self.failure_location is not None and self.backend._s3_exists(self.failure_location)
        )

    def result(self, *, timeout: float = 900.0, poll_s: float = 1.0) -> bytes:
        """The output bytes; ModelError if SageMaker wrote a failure, Timeout if not done."""
        return self.backend._async_result(self, timeout=timeout, poll_s=poll_s)


# -- the backend -----------------------------------------------------------------------------


class SageMakerBackend(Backend):
    """Amazon SageMaker real-time, serverless and asynchronous endpoints.

    Settings (from the spec's `settings`, `--set KEY=VALUE`, or keyword arguments); anything
    not given comes from the usual AWS environment (AWS_PROFILE, AWS_REGION,
    AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_SAGEMAKER / ..._SAGEMAKER_RUNTIME / ..._S3, ~/.aws):

    - `region`, `profile`, `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`
    - `role_arn`: the execution role models run as (env ENDPOINTKIT_SAGEMAKER_ROLE_ARN)
    - `image`: the serving image when a version names none (env ENDPOINTKIT_SAGEMAKER_IMAGE);
      `sagemaker:<framework>:<version>` looks a prebuilt image up with the `sagemaker` package
    - `instance_type`: default for versions without one (ml.m5.large)
    - `artifact_bucket`, `artifact_prefix`: where local model directories are uploaded and the
      history is kept (default bucket `sagemaker-<region>-<account>`, as the SageMaker SDK)
    - `endpoint_url` (all AWS services), `runtime_endpoint_url` (sagemaker-runtime only)
    - `keep_configs`: endpoint configs kept for rollback, the live one included (2)
    - `data_capture`, `data_capture_uri`, `data_capture_percent`: capture requests/responses
    - `deployment_config`: default guardrails for UpdateEndpoint (see DeploymentConfig)
    - `poll_s`, `max_poll_s`: status polling; `read_timeout`, `connect_timeout`,
      `max_pool_connections`: runtime client; `retry_attempts`, `retry_deadline_s`.
    """

    name: ClassVar[str] = "sagemaker"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.SHADOW,
            Capability.NATIVE_SHADOW,
            Capability.TARGET_VERSION,
            Capability.SERVERLESS,
            Capability.ASYNC_INFERENCE,
            Capability.AUTOSCALING,
            Capability.ACCELERATORS,
            Capability.STREAMING,
            Capability.NATIVE_ROLLOUT,
            Capability.SCALING,
            Capability.ALARM_GATES,
        }
    )
    max_payload_bytes: ClassVar[int | None] = MAX_PAYLOAD

    def __init__(
        self,
        *,
        region: str | None = None,
        profile: str | None = None,
        role_arn: str | None = None,
        image: str | None = None,
        instance_type: str = DEFAULT_INSTANCE_TYPE,
        artifact_bucket: str | None = None,
        artifact_prefix: str = "endpointkit",
        endpoint_url: str | None = None,
        runtime_endpoint_url: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        keep_configs: int = 2,
        data_capture: bool = False,
        data_capture_uri: str | None = None,
        data_capture_percent: int = 100,
        deployment_config: DeploymentConfig | Mapping[str, Any] | None = None,
        fetch_logs: bool = True,
        poll_s: float = 5.0,
        max_poll_s: float = 30.0,
        connect_timeout: float = 10.0,
        read_timeout: float = RUNTIME_READ_TIMEOUT_S,
        max_pool_connections: int = 32,
        retry_attempts: int = 6,
        retry_deadline_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if keep_configs < 1:
            raise ValidationError("keep_configs must be at least 1 (the live config).")
        if not 0 < data_capture_percent <= 100:
            raise ValidationError("data_capture_percent must be 1-100.")
        self._region_setting = region
        self._profile = profile
        self._role_arn = role_arn or os.environ.get("ENDPOINTKIT_SAGEMAKER_ROLE_ARN")
        self._image = image or os.environ.get("ENDPOINTKIT_SAGEMAKER_IMAGE")
        self._instance_type = instance_type
        self._bucket_setting = artifact_bucket or os.environ.get("ENDPOINTKIT_SAGEMAKER_BUCKET")
        self._prefix = artifact_prefix.strip("/")
        self._endpoint_url = endpoint_url
        self._runtime_endpoint_url = runtime_endpoint_url
        self._credentials = {
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
        }
        self._keep_configs = keep_configs
        self._data_capture = data_capture
        self._data_capture_uri = data_capture_uri
        self._data_capture_percent = data_capture_percent
        self._deployment_config = DeploymentConfig.coerce(deployment_config)
        self._fetch_logs = fetch_logs
        self.poll_first_s = poll_s
        self.poll_max_s = max_poll_s
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_pool = max_pool_connections
        self._retry_attempts = retry_attempts
        self._retry_deadline_s = retry_deadline_s
        self.sleep = sleep

        self._lock = threading.RLock()
        self._session: Any = None
        self._clients: dict[tuple[str, float | None], Any] = {}
        self._bucket_checked: str | None = None
        self._config_cache: dict[str, dict[str, Any]] = {}
        self._tag_cache: dict[str, dict[str, str]] = {}
        self._log_cache: dict[tuple[str, str], str] = {}
        self._image_cache: dict[str, str] = {}
        self._pending_names: set[str] = set()
        self._local = threading.local()  # per-call options (deploy's deployment_config)

    # -- AWS plumbing ----------------------------------------------------------------------------

    def _boto3_session(self) -> Any:
        with self._lock:
            if self._session is None:
                try:
                    import boto3
                except ImportError as exc:
                    raise MissingDependency(
                        "SageMaker support needs boto3.",
                        hint="pip install 'endpointkit[sagemaker]'",
                        backend=BACKEND,
                    ) from exc
                with aws_errors("connect"):
                    self._session = boto3.Session(
                        profile_name=self._profile,
                        region_name=self._region_setting,
                        **{k: v for k, v in self._credentials.items() if v},
                    )
            return self._session

    @property
    def region(self) -> str:
        """The AWS region in use (setting, AWS_REGION, or the profile's)."""
        region = (
            self._region_setting
            or os.environ.get("AWS_REGION")
            or self._boto3_session().region_name
        )
        if not region:
            raise ValidationError(
                "no AWS region is configured for the sagemaker backend.",
                hint="Pass the 'region' setting (--set region=eu-west-1) or set AWS_REGION.",
                backend=BACKEND,
            )
        return str(region)

    def _client(self, service: str, read_timeout: float | None = None) -> Any:
        if read_timeout is not None:
            read_timeout = float(math.ceil(read_timeout))  # few distinct clients, not one a call
        key = (service, read_timeout)
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                return client
            from botocore.config import Config

            runtime = service == "sagemaker-runtime"
            config = Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=self._connect_timeout,
                read_timeout=read_timeout or (self._read_timeout if runtime else 60.0),
                max_pool_connections=self._max_pool,
                user_agent_extra="endpointkit/0.1",
            )
            url = (self._runtime_endpoint_url or self._endpoint_url) if runtime else None
            url = url or self._endpoint_url
            session = self._boto3_session()
            with aws_errors("connect", region=self._region_setting):
                client = session.client(
                    service, region_name=self.region, endpoint_url=url, config=config
                )
            self._clients[key] = client
            return client

    def _call(
        self,
        service: str,
        method: str,
        *,
        operation: str,
        endpoint: str | None = None,
        version: str | None = None,
        what: str | None = None,
        retry: bool = True,
        **kwargs: Any,
    ) -> Any:
        """One AWS call: errors translated, retried on Throttled/Unavailable if `retry`."""

        def attempt() -> Any:
            with aws_errors(
                operation, endpoint=endpoint, version=version, region=self.region, what=what
            ):
                return getattr(self._client(service), method)(**kwargs)

        if not retry:
            return attempt()
        return self._retrying(attempt)

    def _retrying(self, fn: Callable[[], T]) -> T:
        policy = control_plane(
            attempts=self._retry_attempts, deadline_s=self._retry_deadline_s, sleep=self.sleep
        )
        return policy(fn)

    def _sm(self, method: str, *, operation: str, **kwargs: Any) -> Any:
        return self._call("sagemaker", method, operation=operation, **kwargs)

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                close = getattr(client, "close", None)
                if close is not None:
                    close()
            self._clients.clear()

    # -- primitives: reading ---------------------------------------------------------------------

    def get(self, name: str) -> EndpointState:
        desc = self._describe(name, "get")
        config = self._describe_config(desc["EndpointConfigName"], name)
        state = self._state(name, desc, config)
        if name in self._pending_names and desc.get("EndpointStatus") in _SETTLED:
            try:
                self._reconcile(name, desc)
            except EndpointKitError as exc:
                # Recording the outcome is bookkeeping: the state read above is still right,
                # and the next read (or `history`) tries again.
                log.warning("could not settle the history of %r yet: %s", name, exc)
        return state

    def list_endpoints(self) -> list[EndpointState]:
        states: list[EndpointState] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"MaxResults": 100, "SortBy": "Name", "SortOrder": "Ascending"}
            if token:
                kwargs["NextToken"] = token
            page = self._sm("list_endpoints", operation="list", **kwargs)
            for summary in page.get("Endpoints", []):
                if not self._owned(summary["EndpointArn"], summary["EndpointName"]):
                    continue
                try:
                    states.append(self.get(summary["EndpointName"]))
                except NotFound:
                    continue  # deleted while listing
            token = page.get("NextToken")
            if not token:
                return states

    def history(self, name: str) -> list[Event]:
        doc = self._read_history(name)
        if doc is None:
            raise self.not_found(name, "history")
        if doc.pending:
            self._reconcile(name)
            doc = self._read_history(name) or doc
        return list(doc.events)

    # -- primitives: changing --------------------------------------------------------------------

    def _create(self, name: str, version: VersionSpec, tags: Mapping[str, str]) -> EndpointState:
        self._validate(name, version)
        if self._exists("describe_endpoint", name, EndpointName=name):
            # Someone else's endpoint of that name (ours would have been found by `exists`):
            # refuse before creating any model or config for it.
            raise AlreadyExists(
                f"endpoint {name!r} already exists on sagemaker ({self.region}) and was not "
                "created by endpointkit.",
                hint="Pick another name; endpointkit never changes endpoints it did not create.",
                backend=BACKEND,
                operation="create",
                endpoint=name,
            )
        model = self._ensure_model(name, version)
        variants = [self._variant(version, model, 1.0)]
        config = self._ensure_config(
            name,
            variants,
            shadow=[],
            async_config=self._async_config(version),
            capture=self._capture_config(name),
        )
        history_uri = self._history_uri(name)
        all_tags = {
            **dict(tags),
            MANAGED_TAG: MANAGED_BY,
            ENDPOINT_TAG: name,
            HISTORY_TAG: history_uri,
        }
        self._create_endpoint(name, config, all_tags)

        def record(doc: HistoryDoc) -> None:
            self._append(doc, "created", version=version.name, message="endpoint created")
            doc.pending = [
                Pending(
                    "create",
                    config,
                    version=version.name,
                    message="deployed",
                    before=None,
                    after={version.name: 100},
                    data=self._pending_data(version, model),
                )
            ]

        self._update_history(name, record)
        self._pending_names.add(name)
        return self.get(name)

    def _validate_version(self, endpoint: str, version: VersionSpec) -> None:
        """Unsupported features (base class), then SageMaker's own rules, before any call."""
        super()._validate_version(endpoint, version)
        self._validate(endpoint, version)

    def deploy(
        self,
        name: str,
        version: VersionSpec,
        traffic: int = 0,
        *,
        deployment_config: DeploymentConfig | Mapping[str, Any] | None = None,
    ) -> EndpointState:
        """Add a version (see Backend.deploy); `deployment_config` sets SageMaker's native
        guardrails (canary/linear/rolling, alarm rollback) for this update only. SageMaker's
        rules for the version are checked before any call."""
        self._local.deployment_config = DeploymentConfig.coerce(deployment_config)
        try:
            return super().deploy(name, version, traffic)
        finally:
            self._local.deployment_config = None

    def _deploy(self, name: str, version: VersionSpec, traffic: TrafficSplit) -> EndpointState:
        desc, config = self._live(name, "deploy")
        state = self._state(name, desc, config)
        self._validate(name, version, config)
        if config.get("ShadowProductionVariants"):
            raise ValidationError(
                f"endpoint {name!r} has a shadow; SageMaker allows one production variant "
                "beside a shadow, so no version can be added now.",
                hint="Clear the shadow first (set_shadow(None)), then deploy.",
                backend=BACKEND,
                operation="deploy",
                endpoint=name,
                version=version.name,
            )
        model = self._ensure_model(name, version)
        weights = self._live_weights(desc, config)
        share = traffic[version.name]
        production = [dict(v) for v in config.get("ProductionVariants", [])]
        exclude_weights = share >= 100
        if exclude_weights:
            # Retained weights cannot drop to 0: let this config's weights win instead.
            for variant in production:
                variant["InitialVariantWeight"] = 0.0
            new_weight = 1.0
        else:
            for variant in production:
                variant["InitialVariantWeight"] = weights.get(variant["VariantName"], 0.0)
            total = sum(weights.get(v["VariantName"], 0.0) for v in production)
            # The live weights are kept; the new variant gets the weight that makes its share
            # exactly `share` percent of the total.
            new_weight = total * share / (100 - share) if total > 0 else 0.0
        production.append(self._variant(version, model, new_weight))
        new_config = self._ensure_config(
            name,
            production,
            shadow=[],
            async_config=config.get("AsyncInferenceConfig"),
            capture=config.get("DataCaptureConfig"),
        )
        self._update_endpoint(name, new_config, exclude_weights=exclude_weights)
        self._start_pending(
            name,
            Pending(
                "deploy",
                new_config,
                version=version.name,
                message=f"deployed with {share}% of traffic",
                before=dict(state.traffic.root),
                after=dict(traffic.root),
                data=self._pending_data(version, model),
            ),
        )
        return self.get(name)

    def _undeploy(self, name: str, version: str, traffic: TrafficSplit) -> EndpointState:
        desc, config = self._live(name, "undeploy")
        state = self._state(name, desc, config)
        weights = self._live_weights(desc, config)
        production = [
            {**v, "InitialVariantWeight": weights.get(v["VariantName"], 0.0)}
            for v in config.get("ProductionVariants", [])
            if v["VariantName"] != version
        ]
        removed: dict[str, Any] = next(
            (v for v in config.get("ProductionVariants", []) if v["VariantName"] == version), {}
        )
        self._deregister_autoscaling(name, version)
        new_config = self._ensure_config(
            name,
            production,
            shadow=list(config.get("ShadowProductionVariants") or []),
            async_config=config.get("AsyncInferenceConfig"),
            capture=config.get("DataCaptureConfig"),
        )
        # Weights are relative: with the remaining variants' weights retained, the removed
        # version's share is spread over them in proportion, which is what `traffic` says.
        self._update_endpoint(name, new_config, exclude_weights=False)
        self._start_pending(
            name,
            Pending(
                "undeploy",
                new_config,
                version=version,
                message="undeployed",
                before=dict(state.traffic.root),
                after=dict(traffic.root),
                data={"model": removed.get("ModelName")},
            ),
        )
        return self.get(name)

    def _set_traffic(self, name: str, traffic: TrafficSplit) -> EndpointState:
        desc, config = self._live(name, "set_traffic")
        state = self._state(name, desc, config)
        weights = traffic.to_weights()
        desired = [
            {"VariantName": v["VariantName"], "DesiredWeight": weights.get(v["VariantName"], 0.0)}
            for v in config.get("ProductionVariants", [])
        ]
        self._sm(
            "update_endpoint_weights_and_capacities",
            operation="set_traffic",
            endpoint=name,
            EndpointName=name,
            DesiredWeightsAndCapacities=desired,
        )

        def record(doc: HistoryDoc) -> None:
            self._append(
                doc,
                "traffic",
                message="traffic changed",
                before=dict(state.traffic.root),
                after=dict(traffic.root),
            )

        self._update_history(name, record)
        return self.get(name)

    def _set_shadow(self, name: str, shadow: Shadow | None) -> EndpointState:
        desc, config = self._live(name, "set_shadow")
        state = self._state(name, desc, config)
        weights = self._live_weights(desc, config)
        variants = {
            v["VariantName"]: dict(v)
            for v in [
                *config.get("ProductionVariants", []),
                *(config.get("ShadowProductionVariants") or []),
            ]
        }
        current = state.shadow.version if state.shadow else None
        context: dict[str, Any] = {"backend": BACKEND, "operation": "set_shadow", "endpoint": name}
        if shadow is not None:
            if current is not None and current != shadow.version:
                raise ValidationError(
                    f"endpoint {name!r} already shadows to {current!r}.",
                    hint="Clear the shadow first (set_shadow(None)).",
                    **context,
                )
            production_names = [v for v in variants if v != shadow.version]
            if len(production_names) != 1:
                raise ValidationError(
                    f"SageMaker shadows need exactly one production variant beside the shadow; "
                    f"{name!r} has {len(production_names)} ({', '.join(production_names)}).",
                    hint="Undeploy the versions that serve no traffic first.",
                    **context,
                )
            primary = production_names[0]
            primary_weight = weights.get(primary, 0.0) or 1.0
            production = [{**variants[primary], "InitialVariantWeight": primary_weight}]
            # The shadow's sampling rate is its weight relative to the production variant.
            shadows = [
                {
                    **variants[shadow.version],
                    "InitialVariantWeight": primary_weight * shadow.sample_percent / 100,
                }
            ]
            message = f"shadow set to {shadow.version} at {shadow.sample_percent}%"
        else:
            production = [
                {**v, "InitialVariantWeight": weights.get(v["VariantName"], 0.0)}
                for v in config.get("ProductionVariants", [])
            ]
            production += [
                {**v, "InitialVariantWeight": 0.0}
                for v in config.get("ShadowProductionVariants") or []
            ]
            shadows = []
            message = "shadow cleared"
        new_config = self._ensure_config(
            name,
            production,
            shadow=shadows,
            async_config=config.get("AsyncInferenceConfig"),
            capture=config.get("DataCaptureConfig"),
        )
        self._update_endpoint(name, new_config, exclude_weights=True)
        self._start_pending(
            name,
            Pending(
                "shadow",
                new_config,
                version=shadow.version if shadow else current,
                message=message,
                before=dict(state.traffic.root),
                after=dict(state.traffic.root),
            ),
        )
        return self.get(name)

    # -- rollout gates ---------------------------------------------------------------------------

    def alarms_firing(self, names: Sequence[str], *, endpoint: str) -> list[str]:
        """CloudWatch DescribeAlarms: the named alarms whose state is ALARM."""
        found: dict[str, str] = {}
        kwargs: dict[str, Any] = {"AlarmNames": list(names)}
        while True:
            page = self._call(
                "cloudwatch", "describe_alarms", operation="rollout", endpoint=endpoint, **kwargs
            )
            for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                found[alarm["AlarmName"]] = alarm.get("StateValue", "")
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        missing = [n for n in names if n not in found]
        if missing:
            raise NotFound(
                f"CloudWatch alarm {', '.join(repr(n) for n in missing)} does not exist in "
                f"{self.region}.",
                hint="Check the alarm names (aws cloudwatch describe-alarms) and the region.",
                backend=BACKEND,
                operation="rollout",
                endpoint=endpoint,
            )
        return [n for n in names if found[n] == "ALARM"]

    # -- scaling ---------------------------------------------------------------------------------

    def held_scaling(self, scaling: Scaling) -> Scaling:
        """Without autoscaling a SageMaker variant has one instance count: min_replicas."""
        if scaling.autoscaling is None and scaling.max_replicas != scaling.min_replicas:
            return scaling.model_copy(update={"max_replicas": scaling.min_replicas})
        return scaling

    def live_scaling(self, state: EndpointState) -> dict[str, Scaling]:
        """Instance counts from the endpoint; ranges and targets from Application Auto Scaling
        (two calls per autoscaled variant, so `get` does not do this).

        If reading Application Auto Scaling is denied, logs a warning and reports nothing: a
        bare instance count would read as "no autoscaling" and plans would propose removing it.
        """
        try:
            return self._live_scaling(state)
        except PermissionDenied as error:
            log.warning(
                "cannot detect scaling changes on %r: reading Application Auto Scaling was "
                "denied, so plans propose no scale steps. Grant application-autoscaling:"
                "Describe* to the credentials in use. (%s)",
                state.name,
                error.message,
            )
            return {}

    def _live_scaling(self, state: EndpointState) -> dict[str, Scaling]:
        """`live_scaling`, raising PermissionDenied instead of reporting nothing."""
        variants = [
            v
            for v in state.versions
            if not v.details.get("serverless") and not v.details.get("shadow")
        ]
        if not variants:
            return {}
        resources = {f"endpoint/{state.name}/variant/{v.name}": v for v in variants}
        targets = self._call(
            "application-autoscaling",
            "describe_scalable_targets",
            operation="scale",
            endpoint=state.name,
            ServiceNamespace="sagemaker",
            ResourceIds=list(resources),
            ScalableDimension=SCALABLE_DIMENSION,
        ).get("ScalableTargets", [])
        ranges = {t["ResourceId"]: (int(t["MinCapacity"]), int(t["MaxCapacity"])) for t in targets}
        result: dict[str, Scaling] = {}
        for resource, version in resources.items():
            if resource not in ranges:
                if version.replicas:
                    count = int(version.replicas)
                    result[version.name] = Scaling(min_replicas=count, max_replicas=count)
                continue
            low, high = ranges[resource]
            result[version.name] = Scaling(
                min_replicas=low,
                max_replicas=high,
                autoscaling=self._live_policy(state.name, resource),
            )
        return result

    def _live_policy(self, endpoint: str, resource: str) -> Autoscaling | None:
        """The variant's target-tracking policies as one Autoscaling (one policy per target);
        None if none tracks a metric endpointkit sets."""
        policies = self._call(
            "application-autoscaling",
            "describe_scaling_policies",
            operation="scale",
            endpoint=endpoint,
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=SCALABLE_DIMENSION,
        ).get("ScalingPolicies", [])
        targets: dict[str, int] = {}
        cooldowns: dict[str, int] = {}
        for policy in policies:
            config = policy.get("TargetTrackingScalingPolicyConfiguration")
            metric = _tracked_metric(config) if config else None
            if metric is None or metric in targets or policy.get("ResourceId") != resource:
                continue
            targets[metric] = round(float(config["TargetValue"]))
            # endpointkit writes the same cooldowns into each policy; the first one is read.
            cooldowns = cooldowns or {
                "scale_in_cooldown_s": int(config.get("ScaleInCooldown", 300)),
                "scale_out_cooldown_s": int(config.get("ScaleOutCooldown", 60)),
            }
        if not targets:
            return None
        return Autoscaling(
            target_invocations_per_replica=targets.get("invocations"),
            target_cpu_utilization=targets.get("cpu"),
            **cooldowns,
        )

    def _scale(self, name: str, version: str, scaling: Scaling) -> EndpointState:
        """UpdateEndpointWeightsAndCapacities for the instance count (in place, no new fleet)
        and Application Auto Scaling for the range and targets, registered once the count has
        settled. Autoscaling is deregistered first so it cannot fight the new count; if the
        change is refused, what was deregistered is put back and the error says so."""
        desc, config = self._live(name, "scale")
        state = self._state(name, desc, config)
        before = self._live_scaling(state).get(version)
        live = state.version(version)
        current = live.replicas if live is not None and live.replicas else scaling.min_replicas
        count = (
            min(max(current, scaling.min_replicas), scaling.max_replicas)
            if scaling.autoscaling is not None
            else scaling.min_replicas
        )
        removed = self._deregister_autoscaling(name, version)
        message = (
            f"scaled from {before.describe() if before else 'unknown'} to {scaling.describe()} "
            "in place"
        )
        data: dict[str, Any] = {}
        if scaling.autoscaling is not None:
            data["autoscaling"] = {
                "min": scaling.min_replicas,
                "max": scaling.max_replicas,
                **scaling.autoscaling.model_dump(mode="json"),
            }
        try:
            if count == current:
                # Nothing for SageMaker to roll out: only the autoscaling range or target changed.
                if "autoscaling" in data:
                    self._register_autoscaling(name, version, data["autoscaling"])
            else:
                self._update_instance_count(name, version, count)
        except EndpointKitError as error:
            self._put_back_autoscaling(name, version, removed, before, current, error)
            raise
        if count == current:

            def record(doc: HistoryDoc) -> None:
                self._append(doc, "scaled", version=version, message=message)

            self._update_history(name, record)
            return self.get(name)
        self._start_pending(
            name,
            Pending(
                "scale", desc["EndpointConfigName"], version=version, message=message, data=data
            ),
        )
        return self.get(name)

    def _update_instance_count(self, name: str, version: str, count: int) -> None:
        """UpdateEndpointWeightsAndCapacities with `count` instances for `version`. An error
        after the update went through (a lost answer, then a retry refused as in progress) is
        not one: the endpoint already asks for `count`."""
        try:
            self._sm(
                "update_endpoint_weights_and_capacities",
                operation="scale",
                endpoint=name,
                version=version,
                EndpointName=name,
                DesiredWeightsAndCapacities=[
                    {"VariantName": version, "DesiredInstanceCount": count}
                ],
            )
        except EndpointKitError:
            try:
                desc = self._describe(name, "scale")
            except EndpointKitError:
                desc = {}
            desired = {
                v.get("VariantName"): v.get("DesiredInstanceCount")
                for v in desc.get("ProductionVariants", [])
            }
            if desired.get(version) != count:
                raise

    def _put_back_autoscaling(
        self,
        name: str,
        version: str,
        removed: _Registration | None,
        before: Scaling | None,
        count: int,
        error: EndpointKitError,
    ) -> None:
        """After a refused scale: register again what `_scale` deregistered, and say in
        `error` what state the variant is left in (history records a failed put-back)."""
        if removed is None:
            with contextlib.suppress(EndpointKitError):  # the error raised says what failed
                self._deregister_autoscaling(name, version)  # a half-done register
            return
        try:
            self._deregister_autoscaling(name, version)  # a half-done register
            self._restore_autoscaling(name, version, removed)
        except EndpointKitError as failure:
            reason = failure.message
            instances = f"{count} fixed instance{'s' if count != 1 else ''}"
            left = f"{version!r} now has {instances} and no autoscaling"
            error.message = (
                f"{error.message} Its autoscaling had been removed for the change and could "
                f"not be put back ({reason}): {left}."
            )
            error.hint = (
                f"{error.hint} Then apply the spec again: its plan registers the autoscaling."
            ).strip()
            log.warning("scale of %r on %r failed and %s", version, name, left)

            def record(doc: HistoryDoc) -> None:
                self._append(
                    doc,
                    "failed",
                    version=version,
                    message=f"scale of {version} failed and its autoscaling could not be put "
                    f"back: {left} ({reason})",
                )

            with contextlib.suppress(EndpointKitError):  # the raised error says it already
                self._update_history(name, record)
            return
        kept = before.describe() if before is not None else "its scaling"
        error.message = (
            f"{error.message} Nothing was scaled: {version!r} keeps {kept}; "
            "its autoscaling was put back."
        )

    def delete(self, name: str) -> None:
        desc = self._describe(name, "delete")
        config = self._describe_config(desc["EndpointConfigName"], name)
        for variant in [
            *config.get("ProductionVariants", []),
            *(config.get("ShadowProductionVariants") or []),
        ]:
            self._deregister_autoscaling(name, variant["VariantName"])
        self._sm("delete_endpoint", operation="delete", endpoint=name, EndpointName=name)
        for config_name_ in self._owned_configs(name):
            self._delete_quietly("delete_endpoint_config", name, EndpointConfigName=config_name_)
        for model in self._owned_models(name):
            self._delete_quietly("delete_model", name, ModelName=model)
        self._delete_artifacts(name)
        self._pending_names.discard(name)

        def record(doc: HistoryDoc) -> None:
            for pending in doc.pending:
                self._append(
                    doc,
                    "failed",
                    version=pending.version,
                    message=f"{pending.kind} interrupted: the endpoint was deleted",
                )
            doc.pending = []
            self._append(doc, "deleted", message="endpoint deleted")

        self._update_history(name, record)

    # -- invocation ------------------------------------------------------------------------------

    def _invoke(self, request: InvokeRequest) -> InvokeResult:
        """InvokeEndpoint; not retried here (Endpoint.invoke retries throttling and
        transient faults)."""
        name, version = request.endpoint, request.version
        client = self._client("sagemaker-runtime", request.timeout)
        with aws_errors("invoke", endpoint=name, version=version, region=self.region):
            response = client.invoke_endpoint(**self._invoke_kwargs(request))
            data = response["Body"].read()
        answered = response.get("InvokedProductionVariant")
        headers = {
            "x-amzn-invoked-production-variant": str(answered or ""),
            "content-type": str(response.get("ContentType") or ""),
        }
        return InvokeResult(
            body=data,
            content_type=str(response.get("ContentType") or "application/octet-stream"),
            version=answered,
            custom_attributes=response.get("CustomAttributes"),
            headers={k: v for k, v in headers.items() if v},
        )

    def _invoke_stream(self, request: InvokeRequest) -> StreamResult:
        """InvokeEndpointWithResponseStream: the payload parts as they arrive, and the variant
        that answers as `.version`."""
        name, version = request.endpoint, request.version
        client = self._client("sagemaker-runtime", request.timeout)
        with aws_errors("invoke_stream", endpoint=name, version=version, region=self.region):
            response = client.invoke_endpoint_with_response_stream(**self._invoke_kwargs(request))
        events = response["Body"]
        answered = response.get("InvokedProductionVariant") or version
        out_type = str(response.get("ContentType") or "application/octet-stream")
        headers = {
            "x-amzn-invoked-production-variant": str(answered or ""),
            "content-type": out_type,
        }
        return StreamResult(
            self._stream_parts(name, answered, events),
            content_type=out_type,
            version=answered,
            custom_attributes=response.get("CustomAttributes"),
            headers={k: v for k, v in headers.items() if v},
            on_close=events.close,
        )

    def _stream_parts(self, name: str, version: str | None, stream: Any) -> Iterator[bytes]:
        with aws_errors("invoke_stream", endpoint=name, version=version, region=self.region):
            for event in stream:
                part = event.get("PayloadPart")
                if part is not None:
                    yield bytes(part.get("Bytes", b""))
                    continue
                for key in ("ModelStreamError", "InternalStreamFailure"):
                    if key in event:
                        from endpointkit.errors import ModelError, Unavailable

                        detail = event[key]
                        message = str(detail.get("Message", key))
                        if key == "ModelStreamError":
                            raise ModelError(
                                f"endpoint {name!r} failed while streaming: {message}.",
                                body=message.encode(),
                                backend=BACKEND,
                                operation="invoke_stream",
                                endpoint=name,
                                version=version,
                                provider_code=str(detail.get("ErrorCode") or key),
                            )
                        raise Unavailable(
                            f"endpoint {name!r} stream failed: {message}.",
                            backend=BACKEND,
                            operation="invoke_stream",
                            endpoint=name,
                            provider_code=key,
                        )

    def invoke_async(
        self,
        name: str,
        body: bytes | None = None,
        *,
        input_location: str | None = None,
        content_type: str = JSON,
        accept: str | None = None,
        custom_attributes: str | None = None,
        inference_id: str | None = None,
    ) -> AsyncInvocation:
        """InvokeEndpointAsync. `body` is uploaded to the artifact bucket first (or pass an
        s3:// `input_location`); returns a handle to poll for the result."""
        if (body is None) == (input_location is None):
            raise ValidationError("invoke_async needs exactly one of body or input_location.")
        inference_id = inference_id or uuid.uuid4().hex
        if body is not None:
            if len(body) > MAX_ASYNC_PAYLOAD:
                raise ValidationError(
                    f"request to {name!r} is {len(body):,} bytes; asynchronous inference "
                    f"accepts at most {MAX_ASYNC_PAYLOAD:,}.",
                    endpoint=name,
                )
            bucket = self._bucket()
            key = f"{self._prefix}/{name}/async-inputs/{inference_id}"
            self._call(
                "s3",
                "put_object",
                operation="invoke_async",
                endpoint=name,
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
            )
            input_location = f"s3://{bucket}/{key}"
        kwargs: dict[str, Any] = {
            "EndpointName": name,
            "InputLocation": input_location,
            "ContentType": content_type,
            "InferenceId": inference_id,
        }
        if accept:
            kwargs["Accept"] = accept
        if custom_attributes:
            kwargs["CustomAttributes"] = custom_attributes
        response = self._call(
            "sagemaker-runtime",
            "invoke_endpoint_async",
            operation="invoke_async",
            endpoint=name,
            retry=False,
            **kwargs,
        )
        return AsyncInvocation(
            backend=self,
            endpoint=name,
            inference_id=str(response.get("InferenceId") or inference_id),
            output_location=str(response["OutputLocation"]),
            failure_location=response.get("FailureLocation"),
        )

    def _async_result(self, handle: AsyncInvocation, *, timeout: float, poll_s: float) -> bytes:
        from endpointkit.errors import ModelError, Timeout

        def written() -> str | None:
            """Where the answer is, once SageMaker wrote it (the failure first)."""
            for uri in (handle.failure_location, handle.output_location):
                if uri and self._s3_exists(uri):
                    return uri
            return None

        def expired(_: str | None) -> Timeout:
            return Timeout(
                f"asynchronous request {handle.inference_id} to {handle.endpoint!r} has no "
                f"result after {timeout:g} s (expected at {handle.output_location}).",
                backend=BACKEND,
                operation="invoke_async",
                endpoint=handle.endpoint,
            )

        where = poll_until(
            written,
            lambda uri: uri is not None,
            timeout=timeout,
            expired=expired,
            first_s=poll_s,
            max_s=poll_s,
            sleep=self.sleep,
            clock=self.clock,
        )
        data = self._s3_read(str(where))
        if where == handle.failure_location:
            raise ModelError(
                f"asynchronous request {handle.inference_id} to {handle.endpoint!r} failed: "
                f"{data[:300].decode('utf-8', 'replace')}.",
                body=data,
                backend=BACKEND,
                operation="invoke_async",
                endpoint=handle.endpoint,
            )
        return data

    def _invoke_kwargs(self, request: InvokeRequest) -> dict[str, Any]:
        name, accept, version = request.endpoint, request.accept, request.version
        custom_attributes, inference_id = request.custom_attributes, request.inference_id
        kwargs: dict[str, Any] = {
            "EndpointName": name,
            "Body": request.body,
            "ContentType": request.content_type,
        }
        if accept:
            kwargs["Accept"] = accept
        if version:
            kwargs["TargetVariant"] = version
        if custom_attributes:
            if len(custom_attributes) > 1024:
                raise ValidationError(
                    "custom_attributes is limited to 1024 characters by SageMaker.",
                    endpoint=name,
                )
            kwargs["CustomAttributes"] = custom_attributes
        if inference_id:
            kwargs["InferenceId"] = inference_id
        return kwargs

    # -- state -----------------------------------------------------------------------------------

    def _describe(self, name: str, operation: str) -> dict[str, Any]:
        try:
            desc: dict[str, Any] = self._sm(
                "describe_endpoint", operation=operation, endpoint=name, EndpointName=name
            )
        except NotFound:
            raise self._missing(name, operation) from None
        if not self._owned(desc["EndpointArn"], name):
            raise NotFound(
                f"endpoint {name!r} on sagemaker ({self.region}) was not created by endpointkit, "
                "which leaves it alone.",
                hint="Manage it with the tool that created it, or pick another name.",
                backend=BACKEND,
                operation=operation,
                endpoint=name,
            )
        return desc

    def _missing(self, name: str, operation: str) -> NotFound:
        error = self.not_found(name, operation)
        error.message = f"endpoint {name!r} not found on sagemaker ({self.region})."
        return error

    def _live(self, name: str, operation: str) -> tuple[dict[str, Any], dict[str, Any]]:
        desc = self._describe(name, operation)
        return desc, self._describe_config(desc["EndpointConfigName"], name)

    def _describe_config(self, config: str, endpoint: str) -> dict[str, Any]:
        with self._lock:
            cached = self._config_cache.get(config)
        if cached is not None:
            return cached
        data: dict[str, Any] = self._sm(
            "describe_endpoint_config",
            operation="get",
            endpoint=endpoint,
            what=f"endpoint config {config!r}",
            EndpointConfigName=config,
        )
        with self._lock:
            self._config_cache[config] = data  # configs are immutable
        return data

    def _tags(self, arn: str, endpoint: str) -> dict[str, str]:
        with self._lock:
            cached = self._tag_cache.get(arn)
        if cached is not None:
            return cached
        tags: dict[str, str] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"ResourceArn": arn, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            page = self._sm("list_tags", operation="get", endpoint=endpoint, **kwargs)
            tags.update(tags_dict(page.get("Tags")))
            token = page.get("NextToken")
            if not token:
                break
        if tags.get(MANAGED_TAG) == MANAGED_BY:
            with self._lock:
                self._tag_cache[arn] = tags  # ownership never changes once set
        return tags

    def _owned(self, arn: str, endpoint: str) -> bool:
        tags = self._tags(arn, endpoint)
        return tags.get(MANAGED_TAG) == MANAGED_BY and tags.get(ENDPOINT_TAG) == endpoint

    def _live_weights(self, desc: dict[str, Any], config: dict[str, Any]) -> dict[str, float]:
        summaries = {v["VariantName"]: v for v in desc.get("ProductionVariants") or []}
        weights: dict[str, float] = {}
        for variant in config.get("ProductionVariants", []):
            name = variant["VariantName"]
            summary = summaries.get(name, {})
            weight = summary.get("CurrentWeight", summary.get("DesiredWeight"))
            if weight is None:
                weight = variant.get("InitialVariantWeight", 1.0)
            weights[name] = float(weight)
        return weights

    def _state(self, name: str, desc: dict[str, Any], config: dict[str, Any]) -> EndpointState:
        raw_status = str(desc.get("EndpointStatus", ""))
        summaries = {
            v["VariantName"]: v
            for v in [
                *(desc.get("ProductionVariants") or []),
                *(desc.get("ShadowProductionVariants") or []),
            ]
        }
        weights = self._live_weights(desc, config)
        versions: list[VersionState] = []
        shadow_variants = list(config.get("ShadowProductionVariants") or [])
        for variant in [*config.get("ProductionVariants", []), *shadow_variants]:
            vname = variant["VariantName"]
            summary = summaries.get(vname, {})
            statuses = [s.get("Status") for s in summary.get("VariantStatus") or []]
            vstatus = next(
                (_VARIANT_STATUS[s] for s in statuses if s in _VARIANT_STATUS), Status.IN_SERVICE
            )
            serverless = "ServerlessConfig" in variant
            replicas = None
            if not serverless:
                replicas = summary.get(
                    "CurrentInstanceCount",
                    summary.get("DesiredInstanceCount", variant.get("InitialInstanceCount")),
                )
            versions.append(
                VersionState(
                    name=vname,
                    spec_hash=hash_from_model_name(name, vname, str(variant.get("ModelName"))),
                    status=vstatus,
                    replicas=int(replicas) if replicas is not None else None,
                    details={
                        "model": variant.get("ModelName"),
                        "instance_type": variant.get("InstanceType"),
                        "serverless": variant.get("ServerlessConfig"),
                        "weight": weights.get(vname),
                        "shadow": variant in shadow_variants,
                    },
                )
            )
        traffic = TrafficSplit.from_weights(weights) if weights else TrafficSplit({})
        shadow = None
        if shadow_variants and config.get("ProductionVariants"):
            primary = float(config["ProductionVariants"][0].get("InitialVariantWeight") or 1.0)
            primary = weights.get(config["ProductionVariants"][0]["VariantName"]) or primary
            sv = shadow_variants[0]
            summary = summaries.get(sv["VariantName"], {})
            sw = summary.get("CurrentWeight", sv.get("InitialVariantWeight", primary))
            percent = round(100 * float(sw) / primary) if primary else 100
            shadow = Shadow(version=sv["VariantName"], sample_percent=min(100, max(1, percent)))
        failure = desc.get("FailureReason")
        details: dict[str, Any] = {
            "arn": desc.get("EndpointArn"),
            "endpoint_config": desc.get("EndpointConfigName"),
            "region": self.region,
        }
        if failure:
            details["log_hint"] = self._log_hint(name, desc)
        return EndpointState(
            name=name,
            backend=self.name,
            status=_STATUS.get(raw_status, Status.UPDATING),
            raw_status=raw_status,
            versions=versions,
            traffic=traffic,
            shadow=shadow,
            failure_reason=failure,
            created_at=desc.get("CreationTime"),
            updated_at=desc.get("LastModifiedTime"),
            url=f"https://runtime.sagemaker.{self.region}.amazonaws.com/endpoints/{name}/invocations",
            details=details,
        )

    def _log_hint(self, name: str, desc: dict[str, Any]) -> str:
        """Where to read why the endpoint failed: the log group, the variant's stream, and the
        last error line logged there (read once per failure)."""
        group = log_group(name)
        reason = str(desc.get("FailureReason") or "")
        match = re.search(r"variant (\S+?)[.,\s]", reason + " ")
        variant = match.group(1) if match else None
        key = (name, f"{desc.get('LastModifiedTime')}|{reason}")
        with self._lock:
            cached = self._log_cache.get(key)
        if cached is not None:
            return cached
        hint = f"CloudWatch log group {group}" + (f", streams {variant}/*" if variant else "")
        if self._fetch_logs:
            hint = self._last_error(name, group, variant) or hint
        with self._lock:
            self._log_cache[key] = hint
        return hint

    def _last_error(self, name: str, group: str, variant: str | None) -> str | None:
        kwargs: dict[str, Any] = {"logGroupName": group, "limit": 200}
        if variant:
            kwargs["logStreamNamePrefix"] = f"{variant}/"
        try:
            events = self._call(
                "logs", "filter_log_events", operation="logs", endpoint=name, **kwargs
            ).get("events", [])
        except EndpointKitError:
            return None  # logs are a courtesy: no permission or no group is not an error
        # Prefer a structured error (a JSON line with an "error"), then any line that looks
        # like one; the newest wins.
        candidates = [
            (str(event.get("message", "")).strip(), str(event.get("logStreamName", "")))
            for event in reversed(events)
        ]
        for message, stream in candidates:
            detail = _json_error(message)
            if detail:
                return f"CloudWatch log group {group}, stream {stream}: {detail}"
        for message, stream in candidates:
            if _ERROR_LINE.search(message):
                return f"CloudWatch log group {group}, stream {stream}: {message[:300]}"
        return None

    # -- history -----------------------------------------------------------------------------------

    def _history_key(self, name: str) -> str:
        return f"{self._prefix}/{name}/history.json"

    def _history_uri(self, name: str) -> str:
        return f"s3://{self._bucket()}/{self._history_key(name)}"

    def _read_history(self, name: str) -> HistoryDoc | None:
        bucket = self._existing_bucket()
        if bucket is None:
            return None
        try:
            response = self._call(
                "s3",
                "get_object",
                operation="history",
                endpoint=name,
                what=f"history of {name!r}",
                Bucket=bucket,
                Key=self._history_key(name),
            )
        except NotFound:
            return None
        data = response["Body"].read()
        return HistoryDoc.from_bytes(name, data, response.get("ETag"))

    def _update_history(self, name: str, mutate: Callable[[HistoryDoc], None]) -> HistoryDoc:
        """Read-modify-write the history with a conditional put; retried on a lost race."""
        bucket = self._bucket()
        for _ in range(8):
            doc = self._read_history(name) or HistoryDoc(endpoint=name)
            mutate(doc)
            condition: dict[str, Any] = {"IfMatch": doc.etag} if doc.etag else {"IfNoneMatch": "*"}
            try:
                self._call(
                    "s3",
                    "put_object",
                    operation="history",
                    endpoint=name,
                    what=f"history of {name!r}",
                    Bucket=bucket,
                    Key=self._history_key(name),
                    Body=doc.to_bytes(),
                    ContentType="application/json",
                    **condition,
                )
            except Conflict:
                continue  # another writer got there first: read again and re-apply
            return doc
        raise Conflict(
            f"could not record the history of {name!r}: it kept changing under us.",
            backend=BACKEND,
            operation="history",
            endpoint=name,
        )

    def _append(
        self,
        doc: HistoryDoc,
        kind: Any,
        *,
        version: str | None = None,
        message: str = "",
        before: dict[str, int] | None = None,
        after: dict[str, int] | None = None,
    ) -> None:
        now = _now()
        if doc.events and doc.events[-1].time > now:
            now = doc.events[-1].time  # keep the log sorted even if clocks disagree
        doc.events.append(
            Event(
                time=now,
                endpoint=doc.endpoint,
                kind=kind,
                version=version,
                message=message,
                traffic_before=before,
                traffic_after=after,
            )
        )

    def _start_pending(self, name: str, pending: Pending) -> None:
        def record(doc: HistoryDoc) -> None:
            doc.pending = [pending]

        self._update_history(name, record)
        self._pending_names.add(name)

    def _pending_data(self, version: VersionSpec, model: str) -> dict[str, Any]:
        data: dict[str, Any] = {"model": model}
        if version.autoscaling is not None:
            data["autoscaling"] = {
                "min": version.resources.min_replicas,
                "max": version.resources.max_replicas,
                **version.autoscaling.model_dump(mode="json"),
            }
        return data

    def _reconcile(self, name: str, desc: dict[str, Any] | None = None) -> None:
        """Settle pending operations once SageMaker has finished them: record the outcome,
        then register autoscaling (on success) and clean up what is no longer needed."""
        try:
            desc = desc or self._describe(name, "get")
        except NotFound:
            self._pending_names.discard(name)
            return
        raw_status = desc.get("EndpointStatus")
        if raw_status not in _SETTLED:
            return
        config = self._describe_config(desc["EndpointConfigName"], name)
        state = self._state(name, desc, config)
        live_config = desc["EndpointConfigName"]
        outcomes: list[tuple[Pending, bool]] = []

        def record(doc: HistoryDoc) -> None:
            outcomes.clear()
            for pending in doc.pending:
                ok = pending.config == live_config and raw_status == "InService"
                outcomes.append((pending, ok))
                if ok:
                    kind = {
                        "create": "deployed",
                        "deploy": "deployed",
                        "undeploy": "undeployed",
                        "shadow": "shadow",
                        "scale": "scaled",
                    }[pending.kind]
                    after = (
                        pending.after if pending.kind in ("shadow", "scale") else state.traffic.root
                    )
                    self._append(
                        doc,
                        kind,
                        version=pending.version,
                        message=pending.message,
                        before=pending.before,
                        after=dict(after) if after is not None else None,
                    )
                else:
                    reason = state.failure_reason or f"the endpoint is {raw_status}"
                    self._append(
                        doc,
                        "failed",
                        version=pending.version,
                        message=f"{pending.kind} of {pending.version or 'the endpoint'} "
                        f"failed: {reason}",
                    )
            doc.pending = []

        doc = self._read_history(name)
        if doc is None or not doc.pending:
            self._pending_names.discard(name)
            return
        self._update_history(name, record)
        self._pending_names.discard(name)
        for pending, ok in outcomes:
            if ok and "autoscaling" in pending.data and pending.version:
                self._register_autoscaling(name, pending.version, pending.data["autoscaling"])
            if not ok and pending.config != live_config:
                # The config never went live: it is no rollback target. Its model goes with
                # the cleanup below unless a kept config uses it.
                self._delete_quietly(
                    "delete_endpoint_config", name, EndpointConfigName=pending.config
                )
                with self._lock:
                    self._config_cache.pop(pending.config, None)
        if raw_status == "InService":
            self._cleanup(name, live_config)

    # -- models, configs, endpoint -----------------------------------------------------------------

    def _validate(
        self, name: str, version: VersionSpec, config: dict[str, Any] | None = None
    ) -> None:
        """SageMaker's own rules, checked before any call."""
        context: dict[str, Any] = {
            "backend": BACKEND,
            "operation": "deploy",
            "endpoint": name,
            "version": version.name,
        }
        if not (version.image or self._image):
            raise ValidationError(
                f"version {version.name!r} names no serving image and the sagemaker backend has "
                "no default.",
                hint="Set the version's 'image', or the 'image' setting (an ECR URI of the "
                "endpointkit serving image).",
                **context,
            )
        self._image_for(version)  # a `sagemaker:<framework>:<version>` image resolves now
        if not self._role_arn:
            raise ValidationError(
                "the sagemaker backend needs an execution role for its models.",
                hint="Pass the 'role_arn' setting or set ENDPOINTKIT_SAGEMAKER_ROLE_ARN.",
                **context,
            )
        model = version.model
        if model is not None:
            if model.startswith("gs://"):
                raise ValidationError(
                    f"version {version.name!r}: SageMaker reads models from S3, not {model!r}.",
                    hint="Copy the artifact to s3:// or give a local directory to upload.",
                    **context,
                )
            if not model.startswith("s3://") and not Path(model.removeprefix("file://")).exists():
                raise ValidationError(
                    f"version {version.name!r}: model path {model!r} does not exist.", **context
                )
        if len(version.effective_env()) + 1 > 100:
            raise ValidationError(
                f"version {version.name!r} has {len(version.effective_env())} environment "
                "entries; SageMaker allows 100 and endpointkit adds ENDPOINTKIT_VERSION.",
                **context,
            )
        resources = version.resources
        instance = resources.instance_type or self._instance_type
        if (
            version.serverless is None
            and resources.accelerator_count
            and not instance.split(".")[1].startswith(_ACCELERATED_FAMILIES)
        ):
            raise ValidationError(
                f"version {version.name!r} asks for accelerators but {instance} has none.",
                hint="Pick a GPU or Inferentia instance type, e.g. ml.g4dn.xlarge.",
                **context,
            )
        if version.async_inference is not None:
            for uri in (version.async_inference.output_path, version.async_inference.failure_path):
                if uri is not None and not uri.startswith("s3://"):
                    raise ValidationError(
                        f"version {version.name!r}: asynchronous output must go to s3://, not "
                        f"{uri!r}.",
                        **context,
                    )
        startup = version.health.startup_timeout_s if version.health else None
        if version.serverless is not None and startup and startup > SERVERLESS_STARTUP_S:
            raise ValidationError(
                f"version {version.name!r} is serverless and asks for "
                f"health.startup_timeout_s={startup}; SageMaker gives serverless containers a "
                f"fixed {SERVERLESS_STARTUP_S} s to download the model and answer /ping.",
                hint=f"Lower startup_timeout_s to {SERVERLESS_STARTUP_S} or less, or deploy the "
                "version on instances (remove 'serverless').",
                **context,
            )
        if version.serverless is not None and self._data_capture:
            raise ValidationError(
                f"version {version.name!r} is serverless; SageMaker cannot capture data for "
                "serverless endpoints.",
                hint="Turn the data_capture setting off for this endpoint.",
                **context,
            )
        if config is not None:
            wanted = self._async_config(version)
            live = config.get("AsyncInferenceConfig")
            if (wanted is None) != (live is None) or (wanted and live and wanted != live):
                raise ValidationError(
                    f"version {version.name!r} and endpoint {name!r} disagree on asynchronous "
                    "inference; SageMaker sets it per endpoint.",
                    hint="Give every version of an endpoint the same async_inference (or none).",
                    **context,
                )
            live_serverless = any(
                "ServerlessConfig" in v for v in config.get("ProductionVariants", [])
            )
            if config.get("ProductionVariants") and live_serverless != (
                version.serverless is not None
            ):
                raise ValidationError(
                    f"version {version.name!r} and endpoint {name!r} mix serverless and "
                    "instance-based variants, which SageMaker does not allow.",
                    **context,
                )

    def _image_for(self, version: VersionSpec) -> str:
        image = version.image or self._image or ""
        if image.startswith("sagemaker:"):
            key = f"{image}|{version.resources.instance_type or self._instance_type}"
            with self._lock:
                cached = self._image_cache.get(key)
            if cached is None:
                cached = self._lookup_image(image, version)
                with self._lock:
                    self._image_cache[key] = cached
            return cached
        return image

    def _lookup_image(self, ref: str, version: VersionSpec) -> str:
        """`sagemaker:<framework>:<version>` -> a prebuilt image URI, via the sagemaker package."""
        parts = ref.split(":")
        framework = parts[1]
        framework_version = parts[2] if len(parts) > 2 else None
        try:
            from sagemaker import image_uris  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise MissingDependency(
                f"image {ref!r} needs the 'sagemaker' package to look up the prebuilt image.",
                hint="pip install sagemaker, or give the full ECR image URI.",
                backend=BACKEND,
                version=version.name,
            ) from exc
        try:
            return str(
                image_uris.retrieve(
                    framework=framework,
                    region=self.region,
                    version=framework_version,
                    image_scope="inference",
                    instance_type=version.resources.instance_type or self._instance_type,
                )
            )
        except ValueError as exc:
            raise ValidationError(
                f"no prebuilt SageMaker image for {ref!r}: {exc}.", backend=BACKEND
            ) from None

    def _ensure_model(self, endpoint: str, version: VersionSpec) -> str:
        """Create the version's Model unless it is already there; returns its name."""
        name = model_name(endpoint, version.name, version.spec_hash)
        if self._exists("describe_model", endpoint, ModelName=name):
            return name
        container: dict[str, Any] = {
            "Image": self._image_for(version),
            "Mode": "SingleModel",
            "Environment": container_environment(version),
        }
        data_url = self._model_data(endpoint, version)
        if data_url:
            container["ModelDataUrl"] = data_url
        tags = {
            MANAGED_TAG: MANAGED_BY,
            ENDPOINT_TAG: endpoint,
            VERSION_TAG: version.name,
            HASH_TAG: version.spec_hash,
        }
        self._create_once(
            "create_model",
            "describe_model",
            endpoint,
            version.name,
            {"ModelName": name},
            PrimaryContainer=container,
            ExecutionRoleArn=self._role_arn,
            Tags=tags_list(tags),
        )
        return name

    def _model_data(self, endpoint: str, version: VersionSpec) -> str | None:
        model = version.model
        if model is None or model.startswith("s3://"):
            return model
        path = Path(model.removeprefix("file://"))
        data, sha = pack_model(path)
        bucket = self._bucket()
        key = f"{self._prefix}/{endpoint}/artifacts/{version.name}-{sha[:16]}/model.tar.gz"
        uri = f"s3://{bucket}/{key}"
        if not self._s3_exists(uri):
            self._call(
                "s3",
                "put_object",
                operation="upload",
                endpoint=endpoint,
                version=version.name,
                what=f"model artifact {uri}",
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType="application/x-gzip",
            )
        return uri

    def _variant(self, version: VersionSpec, model: str, weight: float) -> dict[str, Any]:
        return production_variant(version, model, weight, self._instance_type)

    def _async_config(self, version: VersionSpec) -> dict[str, Any] | None:
        spec = version.async_inference
        if spec is None:
            return None
        output: dict[str, Any] = {"S3OutputPath": spec.output_path}
        if spec.failure_path:
            output["S3FailurePath"] = spec.failure_path
        config: dict[str, Any] = {"OutputConfig": output}
        if spec.max_concurrent_invocations_per_replica:
            config["ClientConfig"] = {
                "MaxConcurrentInvocationsPerInstance": spec.max_concurrent_invocations_per_replica
            }
        return config

    def _capture_config(self, name: str) -> dict[str, Any] | None:
        if not self._data_capture:
            return None
        uri = self._data_capture_uri or f"s3://{self._bucket()}/{self._prefix}/{name}/data-capture"
        return {
            "EnableCapture": True,
            "InitialSamplingPercentage": self._data_capture_percent,
            "DestinationS3Uri": uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }

    def _ensure_config(
        self,
        endpoint: str,
        production: list[dict[str, Any]],
        *,
        shadow: list[dict[str, Any]],
        async_config: dict[str, Any] | None,
        capture: dict[str, Any] | None,
    ) -> str:
        """Create the EndpointConfig with this content unless it exists; returns its name."""
        request: dict[str, Any] = {"ProductionVariants": production}
        if shadow:
            request["ShadowProductionVariants"] = shadow
        if async_config:
            request["AsyncInferenceConfig"] = async_config
        if capture:
            request["DataCaptureConfig"] = capture
        name = config_name(endpoint, request)
        if self._exists("describe_endpoint_config", endpoint, EndpointConfigName=name):
            return name
        tags = {MANAGED_TAG: MANAGED_BY, ENDPOINT_TAG: endpoint}
        self._create_once(
            "create_endpoint_config",
            "describe_endpoint_config",
            endpoint,
            None,
            {"EndpointConfigName": name},
            Tags=tags_list(tags),
            **request,
        )
        return name

    def _create_endpoint(self, name: str, config: str, tags: dict[str, str]) -> None:
        self._create_once(
            "create_endpoint",
            "describe_endpoint",
            name,
            None,
            {"EndpointName": name},
            EndpointConfigName=config,
            Tags=tags_list(tags),
        )

    def _exists(self, describe: str, endpoint: str, **key: Any) -> bool:
        try:
            self._sm(describe, operation="get", endpoint=endpoint, **key)
        except NotFound:
            return False
        return True

    def _create_once(
        self,
        create: str,
        describe: str,
        endpoint: str,
        version: str | None,
        key: dict[str, Any],
        **request: Any,
    ) -> None:
        """Create a resource so that a retry never sends the create twice blindly: every
        attempt after the first checks what exists first (SageMaker rejects a duplicate name,
        moto silently replaces it; neither is relied on)."""
        attempts = 0

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and self._exists(describe, endpoint, **key):
                return
            with aws_errors(create, endpoint=endpoint, version=version, region=self.region):
                getattr(self._client("sagemaker"), create)(**key, **request)

        self._retrying(attempt)
        # SageMaker reads are eventually consistent: wait until the new resource is visible.
        deadline = time.monotonic() + 30
        delay = 0.05
        while not self._exists(describe, endpoint, **key):
            if time.monotonic() > deadline:
                raise NotReady(
                    f"{create} succeeded but {key} is not visible yet.",
                    backend=BACKEND,
                    operation=create,
                    endpoint=endpoint,
                )
            self.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _update_endpoint(self, name: str, config: str, *, exclude_weights: bool) -> None:
        request: dict[str, Any] = {
            "EndpointName": name,
            "EndpointConfigName": config,
            "RetainAllVariantProperties": True,
        }
        if exclude_weights:
            request["ExcludeRetainedVariantProperties"] = [{"VariantPropertyType": "DesiredWeight"}]
        deployment = getattr(self._local, "deployment_config", None) or self._deployment_config
        if deployment is not None:
            request["DeploymentConfig"] = deployment.to_api()
        attempts = 0

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                # A transient fault may hide a call that went through: look before re-sending.
                desc = self._sm("describe_endpoint", operation="deploy", EndpointName=name)
                if desc.get("EndpointStatus") != "InService" or (
                    desc.get("EndpointConfigName") == config
                ):
                    return
            with aws_errors("deploy", endpoint=name, region=self.region):
                self._client("sagemaker").update_endpoint(**request)

        self._retrying(attempt)

    def _delete_quietly(self, method: str, endpoint: str, **key: Any) -> None:
        with contextlib.suppress(NotFound):  # already gone: that is what we wanted
            self._sm(method, operation="delete", endpoint=endpoint, **key)

    def _owned_configs(self, endpoint: str) -> list[str]:
        names: list[tuple[Any, str]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"NameContains": owned_prefix(endpoint), "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            page = self._sm("list_endpoint_configs", operation="cleanup", **kwargs)
            for item in page.get("EndpointConfigs", []):
                if self._tags(item["EndpointConfigArn"], endpoint).get(ENDPOINT_TAG) == endpoint:
                    names.append((item.get("CreationTime"), item["EndpointConfigName"]))
            token = page.get("NextToken")
            if not token:
                break
        names.sort(key=lambda item: item[0], reverse=True)  # newest first
        return [name for _, name in names]

    def _owned_models(self, endpoint: str) -> list[str]:
        names: list[str] = []
        token: str | None = None
        prefix = owned_prefix(endpoint)
        while True:
            kwargs: dict[str, Any] = {"NameContains": prefix, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            page = self._sm("list_models", operation="cleanup", **kwargs)
            for item in page.get("Models", []):
                if not item["ModelName"].startswith(prefix):
                    continue
                if self._tags(item["ModelArn"], endpoint).get(ENDPOINT_TAG) == endpoint:
                    names.append(item["ModelName"])
            token = page.get("NextToken")
            if not token:
                return names

    def _cleanup(self, endpoint: str, live_config: str) -> None:
        """Delete superseded configs (keeping `keep_configs`, the live one included) and the
        models no kept config uses."""
        configs = self._owned_configs(endpoint)
        keep = [live_config, *[c for c in configs if c != live_config][: self._keep_configs - 1]]
        for config in configs:
            if config not in keep:
                self._delete_quietly("delete_endpoint_config", endpoint, EndpointConfigName=config)
                with self._lock:
                    self._config_cache.pop(config, None)
        used: set[str] = set()
        for config in keep:
            try:
                data = self._describe_config(config, endpoint)
            except NotFound:
                continue
            for variant in [
                *data.get("ProductionVariants", []),
                *(data.get("ShadowProductionVariants") or []),
            ]:
                used.add(str(variant.get("ModelName")))
        for model in self._owned_models(endpoint):
            if model not in used:
                self._delete_quietly("delete_model", endpoint, ModelName=model)

    # -- autoscaling -------------------------------------------------------------------------------

    def _register_autoscaling(self, endpoint: str, version: str, spec: dict[str, Any]) -> None:
        """Register the variant's range and one target-tracking policy per target: Application
        Auto Scaling scales out when any policy asks and in only when all of them allow."""
        common = _scaling_key(endpoint, version)
        self._call(
            "application-autoscaling",
            "register_scalable_target",
            operation="autoscaling",
            endpoint=endpoint,
            version=version,
            MinCapacity=int(spec["min"]),
            MaxCapacity=int(spec["max"]),
            **common,
        )
        cooldowns: dict[str, Any] = {
            "ScaleInCooldown": int(spec.get("scale_in_cooldown_s", 300)),
            "ScaleOutCooldown": int(spec.get("scale_out_cooldown_s", 60)),
        }
        metrics: list[tuple[str, float, dict[str, Any]]] = []
        if spec.get("target_invocations_per_replica") is not None:
            predefined = {"PredefinedMetricType": _INVOCATIONS_METRIC}
            metrics.append(
                (
                    "invocations",
                    float(spec["target_invocations_per_replica"]),
                    {"PredefinedMetricSpecification": predefined},
                )
            )
        if spec.get("target_cpu_utilization") is not None:
            customized = {
                "MetricName": _CPU_METRIC,
                "Namespace": "/aws/sagemaker/Endpoints",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": endpoint},
                    {"Name": "VariantName", "Value": version},
                ],
                "Statistic": "Average",
                "Unit": "Percent",
            }
            metrics.append(
                (
                    "cpu",
                    float(spec["target_cpu_utilization"]),
                    {"CustomizedMetricSpecification": customized},
                )
            )
        for metric, value, specification in metrics:
            self._call(
                "application-autoscaling",
                "put_scaling_policy",
                operation="autoscaling",
                endpoint=endpoint,
                version=version,
                PolicyName=f"endpointkit-{endpoint}-{version}-{metric}",
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": value,
                    **specification,
                    **cooldowns,
                },
                **common,
            )

    def _deregister_autoscaling(self, endpoint: str, version: str) -> _Registration | None:
        """Delete the variant's scaling policies and scalable target; returns what was there
        (for `_restore_autoscaling`), None if it had no scalable target."""
        resource = f"endpoint/{endpoint}/variant/{version}"
        common = _scaling_key(endpoint, version)
        targets = self._call(
            "application-autoscaling",
            "describe_scalable_targets",
            operation="autoscaling",
            endpoint=endpoint,
            ServiceNamespace="sagemaker",
            ResourceIds=[resource],
            ScalableDimension=SCALABLE_DIMENSION,
        ).get("ScalableTargets", [])
        targets = [t for t in targets if t.get("ResourceId") == resource]
        if not targets:
            return None
        policies = [
            policy
            for policy in self._call(
                "application-autoscaling",
                "describe_scaling_policies",
                operation="autoscaling",
                endpoint=endpoint,
                ServiceNamespace="sagemaker",
                ResourceId=resource,
                ScalableDimension=SCALABLE_DIMENSION,
            ).get("ScalingPolicies", [])
            if policy.get("ResourceId") == resource
        ]
        for policy in policies:
            with contextlib.suppress(NotFound):
                self._call(
                    "application-autoscaling",
                    "delete_scaling_policy",
                    operation="autoscaling",
                    endpoint=endpoint,
                    PolicyName=policy["PolicyName"],
                    **common,
                )
        with contextlib.suppress(NotFound):
            self._call(
                "application-autoscaling",
                "deregister_scalable_target",
                operation="autoscaling",
                endpoint=endpoint,
                **common,
            )
        return _Registration(target=targets[0], policies=policies)

    def _restore_autoscaling(self, endpoint: str, version: str, removed: _Registration) -> None:
        """Register again a scalable target and policies as `_deregister_autoscaling` found them
        (names and configurations kept, so policies endpointkit did not write come back too)."""
        common = _scaling_key(endpoint, version)
        target: dict[str, Any] = {
            "MinCapacity": int(removed.target["MinCapacity"]),
            "MaxCapacity": int(removed.target["MaxCapacity"]),
        }
        if removed.target.get("SuspendedState"):
            target["SuspendedState"] = removed.target["SuspendedState"]
        # RoleARN is left out: SageMaker variants scale with the service-linked role, and
        # passing a role would need iam:PassRole.
        self._call(
            "application-autoscaling",
            "register_scalable_target",
            operation="autoscaling",
            endpoint=endpoint,
            version=version,
            **target,
            **common,
        )
        for policy in removed.policies:
            configuration = {k: policy[k] for k in _POLICY_CONFIGS if policy.get(k)}
            self._call(
                "application-autoscaling",
                "put_scaling_policy",
                operation="autoscaling",
                endpoint=endpoint,
                version=version,
                PolicyName=policy["PolicyName"],
                PolicyType=policy["PolicyType"],
                **configuration,
                **common,
            )

    # -- S3 ----------------------------------------------------------------------------------------

    def _account(self) -> str:
        identity = self._call("sts", "get_caller_identity", operation="connect")
        return str(identity["Account"])

    def _bucket(self) -> str:
        """The artifact bucket; the default one is created on first use (as the SDK does)."""
        bucket = self._existing_bucket()
        if bucket is not None:
            return bucket
        bucket = self._bucket_name()
        if self._bucket_setting:
            raise NotFound(
                f"artifact bucket {bucket!r} does not exist.",
                hint="Create it, or leave artifact_bucket unset to use "
                "sagemaker-<region>-<account>.",
                backend=BACKEND,
                operation="upload",
            )
        request: dict[str, Any] = {"Bucket": bucket}
        if self.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        self._call("s3", "create_bucket", operation="upload", **request)
        with self._lock:
            self._bucket_checked = bucket
        return bucket

    def _bucket_name(self) -> str:
        return self._bucket_setting or f"sagemaker-{self.region}-{self._account()}"

    def _existing_bucket(self) -> str | None:
        with self._lock:
            if self._bucket_checked is not None:
                return self._bucket_checked
        bucket = self._bucket_name()
        try:
            self._call(
                "s3", "head_bucket", operation="upload", what=f"bucket {bucket!r}", Bucket=bucket
            )
        except NotFound:
            return None
        with self._lock:
            self._bucket_checked = bucket
        return bucket

    def _s3_exists(self, uri: str) -> bool:
        bucket, key = split_s3_uri(uri)
        try:
            self._call("s3", "head_object", operation="s3", what=uri, Bucket=bucket, Key=key)
        except NotFound:
            return False
        return True

    def _s3_read(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        response = self._call("s3", "get_object", operation="s3", what=uri, Bucket=bucket, Key=key)
        return bytes(response["Body"].read())

    def _delete_artifacts(self, endpoint: str) -> None:
        bucket = self._existing_bucket()
        if bucket is None:
            return
        prefixes = [f"{self._prefix}/{endpoint}/artifacts/", f"{self._prefix}/{endpoint}/async-"]
        for prefix in prefixes:
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
                if token:
                    kwargs["ContinuationToken"] = token
                page = self._call("s3", "list_objects_v2", operation="delete", **kwargs)
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self._call(
                        "s3",
                        "delete_objects",
                        operation="delete",
                        Bucket=bucket,
                        Delete={"Objects": keys, "Quiet": True},
                    )
                token = page.get("NextContinuationToken")
                if not token:
                    break


@dataclass(frozen=True)
class _Registration:
    """A variant's scalable target and scaling policies, as Application Auto Scaling described
    them."""

    target: dict[str, Any]
    policies: list[dict[str, Any]]


def _scaling_key(endpoint: str, version: str) -> dict[str, Any]:
    """The fields that name a variant's scalable target in Application Auto Scaling."""
    return {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{endpoint}/variant/{version}",
        "ScalableDimension": SCALABLE_DIMENSION,
    }


def _tracked_metric(config: Mapping[str, Any]) -> Literal["invocations", "cpu"] | None:
    """Which Autoscaling target a target-tracking configuration sets, if one."""
    predefined = config.get("PredefinedMetricSpecification") or {}
    if predefined.get("PredefinedMetricType") == _INVOCATIONS_METRIC:
        return "invocations"
    customized = config.get("CustomizedMetricSpecification") or {}
    if customized.get("MetricName") == _CPU_METRIC:
        return "cpu"
    return None


def _json_error(message: str) -> str | None:
    """The `error` of a JSON log line (the endpointkit server's format), if it has one."""
    import json

    if not message.startswith("{"):
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])[:300]
    return None
