"""Models, endpoint configs and the endpoint itself: what a version becomes on SageMaker.

- a Model per version, `<endpoint>-<version>-<spec hash>`, whose container gets the version's
  environment and `ENDPOINTKIT_VERSION`; a local model directory is packed and uploaded to the
  artifact bucket first;
- an EndpointConfig per change of the variant set, `<endpoint>-c<digest of its content>`, so a
  retried or repeated create finds the one already there; superseded configs and models are
  deleted once a change has succeeded, keeping `keep_configs` configs for rollback;
- UpdateEndpoint onto a new config, keeping the live weights and instance counts
  (RetainAllVariantProperties). `DeploymentConfig` (SageMaker's deployment guardrails) is
  validated here and sent only by a native rollout (`_native.py`), the one update that keeps
  the variant names.

A create is never sent twice blindly: a retry first looks at what exists.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from endpointkit.adapters.sagemaker._artifacts import ArtifactBucket
from endpointkit.adapters.sagemaker._async import async_inference_config
from endpointkit.adapters.sagemaker._client import Aws
from endpointkit.adapters.sagemaker._errors import BACKEND, aws_errors
from endpointkit.adapters.sagemaker._naming import (
    ENDPOINT_TAG,
    HASH_TAG,
    MANAGED_BY,
    MANAGED_TAG,
    VERSION_TAG,
    config_name,
    model_name,
    owned_prefix,
    tags_list,
)
from endpointkit.adapters.sagemaker._prebuilt import framework_environment, lookup_image
from endpointkit.adapters.sagemaker._state import EndpointReader
from endpointkit.errors import (
    EndpointKitError,
    NotFound,
    NotReady,
    ValidationError,
)
from endpointkit.retry import poll_until
from endpointkit.spec import VersionSpec

__all__ = [
    "DEFAULT_INSTANCE_TYPE",
    "DeploymentConfig",
    "Variants",
    "container_environment",
    "production_variant",
]

DEFAULT_INSTANCE_TYPE = "ml.m5.large"

log = logging.getLogger("endpointkit.sagemaker")


def container_environment(version: VersionSpec) -> dict[str, str]:
    """The model container's environment: the version's env plus its name (and, for a
    prebuilt framework container, where its inference script is)."""
    return {
        **framework_environment(version),
        **version.effective_env(),
        "ENDPOINTKIT_VERSION": version.name,
    }


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


def _capture_key(capture: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    """What decides whether two DataCaptureConfigs capture the same (None: no capture)."""
    if not capture or not capture.get("EnableCapture", True):
        return None
    return (
        capture.get("InitialSamplingPercentage"),
        capture.get("DestinationS3Uri"),
        tuple(sorted(o.get("CaptureMode", "") for o in capture.get("CaptureOptions") or [])),
    )


def _with_count(variant: dict[str, Any], counts: Mapping[str, Any]) -> dict[str, Any]:
    """`variant` starting with its live instance count, if it is live and instance-backed."""
    count = counts.get(variant["VariantName"])
    if count and "InstanceType" in variant:
        return {**variant, "InitialInstanceCount": int(count)}
    return variant


@dataclass(frozen=True)
class DeploymentConfig:
    """SageMaker deployment guardrails for UpdateEndpoint (native canary, linear, rolling):
    validated, for an in-place rollout that keeps the variant names: only a native rollout
    (`_native.py`) carries one; every other change refuses it (`GUARDRAILS_REFUSED`).

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
        # Ranges from botocore's service model (WaitIntervalInSeconds, TerminationWait-
        # InSeconds, MaximumExecutionTimeoutInSeconds, AlarmList, CapacitySizeValue) and from
        # its documentation text, which botocore does not enforce: CanarySize at most 50% and
        # LinearStepSize 10-50% of the variant's instances (API_TrafficRoutingConfig.html),
        # MaximumBatchSize 5-50% (API_RollingUpdatePolicy.html).
        problems: list[str] = []
        if self.mode in ("canary", "linear", "rolling") and self.step_percent is None:
            problems.append(f"{self.mode} needs step_percent")
        if self.step_percent is not None and not 1 <= self.step_percent <= 100:
            problems.append("step_percent must be 1-100")
        if self.mode == "canary" and (self.step_percent or 0) > 50:
            problems.append("a canary (CanarySize) must be at most 50% of the instances")
        if self.mode == "linear" and not 10 <= (self.step_percent or 10) <= 50:
            problems.append("linear steps (LinearStepSize) must be 10-50% of the instances")
        if self.mode == "rolling" and not 5 <= (self.step_percent or 5) <= 50:
            problems.append("rolling batches (MaximumBatchSize) must be 5-50% of the instances")
        if self.rollback_batch_percent is not None and not 1 <= self.rollback_batch_percent <= 100:
            problems.append("rollback_batch_percent must be 1-100")
        if any(not alarm for alarm in self.alarms):
            problems.append("alarm names must not be empty")
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


class Variants:
    """Creates, updates and cleans up an endpoint's models and configs."""

    def __init__(
        self,
        aws: Aws,
        bucket: ArtifactBucket,
        reader: EndpointReader,
        *,
        role_arn: str | None,
        image: str | None,
        instance_type: str,
        keep_configs: int,
        data_capture: bool,
        data_capture_uri: str | None,
        data_capture_percent: int,
    ) -> None:
        self._aws = aws
        self._bucket = bucket
        self._reader = reader
        self.role_arn = role_arn
        self.image = image
        self.instance_type = instance_type
        self._keep_configs = keep_configs
        self.data_capture = data_capture
        self._data_capture_uri = data_capture_uri
        self._data_capture_percent = data_capture_percent
        self._images: dict[str, str] = {}

    def image_for(self, version: VersionSpec) -> str:
        """The version's image: its own, a prebuilt framework image (`framework`, or the
        `sagemaker:<framework>:<version>` shorthand), or the backend's default."""
        image = version.image or self.image or ""
        instance_type = version.resources.instance_type or self.instance_type
        ref: tuple[str, str | None, str | None]
        if version.framework is not None:
            ref = (version.framework, version.framework_version, version.py_version)
        elif image.startswith("sagemaker:"):
            parts = image.split(":")
            ref = (parts[1], parts[2] if len(parts) > 2 else None, None)
        else:
            return image
        key = f"{ref}|{instance_type}"
        with self._aws.lock:
            cached = self._images.get(key)
        if cached is None:
            cached = lookup_image(
                ref[0],
                ref[1],
                py_version=ref[2],
                region=self._aws.region,
                instance_type=instance_type,
                version=version.name,
            )
            with self._aws.lock:
                self._images[key] = cached
        return cached

    def ensure_model(self, endpoint: str, version: VersionSpec) -> str:
        """Create the version's Model unless it is already there; returns its name."""
        name = model_name(endpoint, version.name, version.spec_hash)
        if self._aws.exists("describe_model", endpoint, ModelName=name):
            return name
        container: dict[str, Any] = {
            "Image": self.image_for(version),
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
            ExecutionRoleArn=self.role_arn,
            Tags=tags_list(tags),
        )
        return name

    def _model_data(self, endpoint: str, version: VersionSpec) -> str | None:
        model = version.model
        if model is None or model.startswith("s3://"):
            return model
        return self._bucket.upload_model(
            endpoint, version.name, Path(model.removeprefix("file://"))
        )

    def variant(self, version: VersionSpec, model: str, weight: float) -> dict[str, Any]:
        return production_variant(version, model, weight, self.instance_type)

    def async_config(self, version: VersionSpec) -> dict[str, Any] | None:
        return async_inference_config(version.async_inference)

    def capture_config(self, name: str) -> dict[str, Any] | None:
        if not self.data_capture:
            return None
        uri = (
            self._data_capture_uri
            or f"s3://{self._bucket.get()}/{self._bucket.key(name, 'data-capture')}"
        )
        return {
            "EnableCapture": True,
            "InitialSamplingPercentage": self._data_capture_percent,
            "DestinationS3Uri": uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }

    def ensure_config(
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
        if self._aws.exists("describe_endpoint_config", endpoint, EndpointConfigName=name):
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

    def switch(
        self,
        name: str,
        live: dict[str, Any],
        desc: dict[str, Any],
        production: list[dict[str, Any]],
        shadow: list[dict[str, Any]],
        *,
        exclude_weights: bool,
        deployment: dict[str, Any] | None = None,
    ) -> str:
        """Move the endpoint onto a config of `production` and `shadow` variants that keeps
        the `live` config's asynchronous inference and takes this backend's data capture
        settings; returns its name.

        The live weights and instance counts are kept (RetainAllVariantProperties). That flag
        also keeps the endpoint's DataCaptureConfig whatever the new config says (it is a
        retained VariantProperty that cannot be excluded), so when the capture settings
        change, the update retains nothing and the new config carries the live instance
        counts (`desc`) itself; its weights are already the intended ones. `deployment` is a
        native rollout's DeploymentConfig (same variant names only).
        """
        capture = self.capture_config(name)
        retain = _capture_key(capture) == _capture_key(live.get("DataCaptureConfig"))
        if not retain:
            counts = {
                v["VariantName"]: v.get("DesiredInstanceCount") or v.get("CurrentInstanceCount")
                for v in [
                    *desc.get("ProductionVariants", []),
                    *(desc.get("ShadowProductionVariants") or []),
                ]
            }
            production = [_with_count(v, counts) for v in production]
            shadow = [_with_count(v, counts) for v in shadow]
        config = self.ensure_config(
            name,
            production,
            shadow=shadow,
            async_config=live.get("AsyncInferenceConfig"),
            capture=capture,
        )
        self.update_endpoint(
            name, config, exclude_weights=exclude_weights, retain=retain, deployment=deployment
        )
        return config

    def create_endpoint(self, name: str, config: str, tags: dict[str, str]) -> None:
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
            self._aws.sm(describe, operation="get", endpoint=endpoint, **key)
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
            if attempts > 1 and self._aws.exists(describe, endpoint, **key):
                return
            with aws_errors(create, endpoint=endpoint, version=version, region=self._aws.region):
                getattr(self._aws.client("sagemaker"), create)(**key, **request)

        self._aws.retrying(attempt)

        # SageMaker reads are eventually consistent: wait until the new resource is visible.
        def invisible(_: bool) -> NotReady:
            return NotReady(
                f"{create} succeeded but {key} is not visible yet.",
                backend=BACKEND,
                operation=create,
                endpoint=endpoint,
            )

        poll_until(
            lambda: self._aws.exists(describe, endpoint, **key),
            bool,
            timeout=30,
            expired=invisible,
            first_s=0.05,
            max_s=2.0,
            sleep=self._aws.sleep,
            clock=self._aws.clock,
        )

    def update_endpoint(
        self,
        name: str,
        config: str,
        *,
        exclude_weights: bool,
        retain: bool = True,
        deployment: dict[str, Any] | None = None,
    ) -> None:
        """UpdateEndpoint onto `config`, keeping live weights (unless `exclude_weights`),
        instance counts and data capture (unless not `retain`: all from the config). Only a
        native rollout passes `deployment` (a DeploymentConfig): it needs the same variant
        names before and after, and every other change endpointkit makes changes the set."""
        request: dict[str, Any] = {
            "EndpointName": name,
            "EndpointConfigName": config,
            "RetainAllVariantProperties": retain,
        }
        if exclude_weights and retain:
            request["ExcludeRetainedVariantProperties"] = [{"VariantPropertyType": "DesiredWeight"}]
        if deployment:
            request["DeploymentConfig"] = deployment

        def applied() -> bool:
            # Our update is under way (the endpoint was InService before it) or done.
            desc = self._aws.sm("describe_endpoint", operation="deploy", EndpointName=name)
            return bool(
                desc.get("EndpointStatus") != "InService"
                or desc.get("EndpointConfigName") == config
            )

        self._aws.mutate(
            "update_endpoint", operation="deploy", endpoint=name, applied=applied, **request
        )

    def delete_quietly(self, method: str, endpoint: str, **key: Any) -> None:
        with contextlib.suppress(NotFound):  # already gone: that is what we wanted
            self._aws.sm(method, operation="delete", endpoint=endpoint, **key)

    def undo_create(self, name: str, error: EndpointKitError) -> None:
        """After a refused create (CreateEndpoint, or a call before it): delete the model,
        config and uploaded artifacts that create made (nothing else can use them: the
        endpoint does not exist), and say in `error` what was left if that fails too."""
        try:
            if self._aws.exists("describe_endpoint", name, EndpointName=name):
                return  # it exists after all: what was made is in use
            self.remove_all(name)
        except EndpointKitError as failure:
            error.message = (
                f"{error.message} Its model, endpoint config or uploaded model could not be "
                f"removed ({failure.message}); delete({name!r}) ('endpointkit destroy') "
                "removes them."
            )
            log.warning("create of %r was refused and left resources: %s", name, failure)
            return
        error.message = (
            f"{error.message} Nothing was left behind: the model, endpoint config and "
            "uploaded model this create made were deleted."
        )

    def leftovers(self, endpoint: str) -> bool:
        """True if any config, model or uploaded file endpointkit made for `endpoint` is there."""
        return bool(
            self.owned_configs(endpoint)
            or self.owned_models(endpoint)
            or self._bucket.files(endpoint)
        )

    def remove_all(self, endpoint: str) -> None:
        """Delete every config, model and uploaded file endpointkit made for `endpoint` (whose
        endpoint is gone or going); its history stays."""
        for config in self.owned_configs(endpoint):
            self.delete_quietly("delete_endpoint_config", endpoint, EndpointConfigName=config)
            self._reader.forget_config(config)
        for model in self.owned_models(endpoint):
            self.delete_quietly("delete_model", endpoint, ModelName=model)
        self._bucket.delete_files(endpoint)

    def owned_configs(self, endpoint: str) -> list[str]:
        """The endpoint configs endpointkit made for `endpoint`, newest first."""
        names: list[tuple[Any, str]] = []
        for item in self._owned(
            endpoint, "list_endpoint_configs", "EndpointConfigs", anywhere=True
        ):
            names.append((item.get("CreationTime"), item["EndpointConfigName"]))
        names.sort(key=lambda item: item[0], reverse=True)  # newest first
        return [name for _, name in names]

    def owned_models(self, endpoint: str) -> list[str]:
        """The models endpointkit made for `endpoint`."""
        return [
            item["ModelName"]
            for item in self._owned(endpoint, "list_models", "Models", anywhere=False)
        ]

    def _owned(
        self, endpoint: str, listing: str, items: str, *, anywhere: bool
    ) -> Iterator[dict[str, Any]]:
        """The summaries of `listing` whose resource endpointkit made for `endpoint` (by its
        tags; unless `anywhere`, names that do not start with the owned prefix are skipped
        without reading their tags)."""
        prefix = owned_prefix(endpoint)
        arn, name = f"{items[:-1]}Arn", f"{items[:-1]}Name"
        for page in self._aws.pages(
            "sagemaker", listing, operation="cleanup", NameContains=prefix, MaxResults=100
        ):
            for item in page.get(items, []):
                if not anywhere and not item[name].startswith(prefix):
                    continue
                if self._reader.tags(item[arn], endpoint).get(ENDPOINT_TAG) == endpoint:
                    yield item

    def cleanup(self, endpoint: str, live_config: str) -> None:
        """Delete superseded configs (keeping `keep_configs`, the live one included) and the
        models no kept config uses."""
        configs = self.owned_configs(endpoint)
        keep = [live_config, *[c for c in configs if c != live_config][: self._keep_configs - 1]]
        for config in configs:
            if config not in keep:
                self.delete_quietly("delete_endpoint_config", endpoint, EndpointConfigName=config)
                self._reader.forget_config(config)
        used: set[str] = set()
        for config in keep:
            try:
                data = self._reader.config(config, endpoint)
            except NotFound:
                continue
            for variant in [
                *data.get("ProductionVariants", []),
                *(data.get("ShadowProductionVariants") or []),
            ]:
                used.add(str(variant.get("ModelName")))
        for model in self.owned_models(endpoint):
            if model not in used:
                self.delete_quietly("delete_model", endpoint, ModelName=model)

    # -- autoscaling -------------------------------------------------------------------------------
