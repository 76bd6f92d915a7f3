"""The vocabulary of endpointkit: what an endpoint should be (specs).

What it is, as a backend reports it, is in `endpointkit.state`; traffic splits and their
rounding are in `endpointkit.traffic` (re-exported here, since specs are made of them).

Pydantic v2 models only; no I/O beyond reading a spec file, no SDK imports. Names follow the
strictest rule among SageMaker (resource and variant names), Vertex AI (model version aliases,
labels) and the local backend, so a spec that validates here deploys on every backend.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from endpointkit.errors import ValidationError
from endpointkit.frameworks import Framework, framework_problem
from endpointkit.traffic import TrafficSplit, largest_remainder

__all__ = [
    "MAX_VERSIONS",
    "AllAtOnce",
    "AsyncInference",
    "Autoscaling",
    "BlueGreen",
    "Canary",
    "EndpointSpec",
    "Gates",
    "HealthCheck",
    "Linear",
    "Resources",
    "RolloutStrategy",
    "Scaling",
    "Serverless",
    "Shadow",
    "TrafficSplit",
    "VersionSpec",
    "largest_remainder",
    "load_spec",
]

# Version names become SageMaker variant names (^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?, <=63)
# and Vertex model version aliases ([a-z][a-zA-Z0-9-]{0,126}[a-z0-9]) and label values
# (lowercase, <=63). The intersection: lowercase letter first, lowercase letters, digits and
# hyphens, ending in a letter or digit, 2 to 63 characters.
VERSION_NAME = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")
# Endpoint names become SageMaker endpoint names (<=63, alphanumerics and hyphens), Vertex
# endpoint IDs (lowercase letter first, [a-z0-9-], <=63) and label values.
ENDPOINT_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
# Tags become Vertex labels: keys start with a lowercase letter; keys and values use lowercase
# letters, digits, '_' and '-', at most 63 characters (SageMaker tags accept all of these).
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
PREDICTOR_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# An SNS topic ARN as SageMaker's AsyncInferenceNotificationConfig takes it
# (docs.aws.amazon.com/sagemaker/latest/APIReference/API_AsyncInferenceNotificationConfig.html).
SNS_TOPIC_ARN = re.compile(r"^arn:aws[a-z\-]*:sns:[a-z0-9\-]*:[0-9]{12}:[a-zA-Z0-9_.-]+$")
# Vertex sets AIP_* itself and rejects containers that try; "default" is Vertex's own alias.
RESERVED_VERSION_NAMES = frozenset({"default"})
# SageMaker: at most 10 production variants per endpoint config.
MAX_VERSIONS = 10
# SageMaker: at most 100 environment entries, keys and values at most 1024 characters.
MAX_ENV = 100
MAX_TAGS = 50
ARTIFACT_SCHEMES = ("s3://", "gs://", "file://")


def _check_name(value: str, pattern: re.Pattern[str], what: str, example: str) -> str:
    if not pattern.match(value):
        raise ValueError(
            f"{what} {value!r} is not allowed: use 1-63 lowercase letters, digits and hyphens, "
            f"starting with a letter and ending with a letter or digit (e.g. {example!r}); "
            "this is the strictest rule among SageMaker, Vertex AI and local"
        )
    return value


class _FieldError(ValueError):
    """A cross-field rule that failed; `field` names where to look (e.g. "traffic")."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Resources(_Model):
    """Compute for one version. Each cloud reads its own type field; both may be given."""

    instance_type: str | None = Field(
        default=None, description="SageMaker instance type, e.g. 'ml.m5.large'."
    )
    machine_type: str | None = Field(
        default=None, description="Vertex AI machine type, e.g. 'n1-standard-4'."
    )
    accelerator_type: str | None = Field(
        default=None, description="e.g. 'NVIDIA_TESLA_T4' (Vertex) or implied by the instance type."
    )
    accelerator_count: int = Field(default=0, ge=0, le=16)
    min_replicas: int = Field(default=1, ge=1, le=1000)
    max_replicas: int | None = Field(default=None, ge=1, le=1000)

    @field_validator("min_replicas", mode="before")
    @classmethod
    def _no_zero(cls, value: Any) -> Any:
        if value == 0:
            raise ValueError(
                "min_replicas=0: only SageMaker asynchronous endpoints can scale to zero, and "
                "they do it with async_inference.scale_to_zero: true (min_replicas stays the "
                "instance count the version starts with, at least 1)"
            )
        return value

    @field_validator("instance_type")
    @classmethod
    def _sagemaker_instance(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^ml\.[a-z0-9]+\.[a-z0-9]+$", value):
            raise ValueError(
                f"instance_type {value!r} is not a SageMaker instance type: use e.g. 'ml.m5.large'"
            )
        return value

    @model_validator(mode="after")
    def _replica_range(self) -> Resources:
        if self.max_replicas is not None and self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})"
            )
        if self.accelerator_count and not (self.accelerator_type or self.instance_type):
            raise ValueError("accelerator_count needs accelerator_type (or a GPU instance_type)")
        return self


class Autoscaling(_Model):
    """Target tracking between Resources.min_replicas and max_replicas."""

    target_invocations_per_replica: int | None = Field(default=None, ge=1)
    target_cpu_utilization: int | None = Field(default=None, ge=1, le=100)
    scale_in_cooldown_s: int = Field(default=300, ge=0, le=86400)
    scale_out_cooldown_s: int = Field(default=60, ge=0, le=86400)

    @model_validator(mode="after")
    def _one_target(self) -> Autoscaling:
        if self.target_invocations_per_replica is None and self.target_cpu_utilization is None:
            raise ValueError(
                "autoscaling needs a target: target_invocations_per_replica or "
                "target_cpu_utilization"
            )
        return self


class Scaling(_Model):
    """How many replicas serve a version: operational, not content.

    A version's scaling is left out of its spec hash, so changing it changes the live version
    in place (SageMaker UpdateEndpointWeightsAndCapacities and Application Auto Scaling, Vertex
    MutateDeployedModel, local worker processes) instead of needing a new version.
    """

    min_replicas: int = Field(default=1, ge=1, le=1000)
    max_replicas: int = Field(default=1, ge=1, le=1000)
    autoscaling: Autoscaling | None = None

    @model_validator(mode="after")
    def _range(self) -> Scaling:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})"
            )
        return self

    def describe(self) -> str:
        """e.g. '2 replicas' or '1-4 replicas, autoscaling on cpu 60%'."""
        count = (
            f"{self.min_replicas}"
            if self.min_replicas == self.max_replicas
            else f"{self.min_replicas}-{self.max_replicas}"
        )
        text = f"{count} replica{'s' if self.max_replicas > 1 else ''}"
        auto = self.autoscaling
        if auto is not None:
            targets = []
            if auto.target_cpu_utilization is not None:
                targets.append(f"cpu {auto.target_cpu_utilization}%")
            if auto.target_invocations_per_replica is not None:
                targets.append(f"{auto.target_invocations_per_replica} invocations/replica")
            text += ", autoscaling on " + " and ".join(targets)
        return text


class Serverless(_Model):
    """SageMaker Serverless Inference. Other backends raise Unsupported."""

    memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 2048
    max_concurrency: int = Field(default=5, ge=1, le=200)
    provisioned_concurrency: int | None = Field(default=None, ge=1, le=200)

    @model_validator(mode="after")
    def _provisioned(self) -> Serverless:
        if self.provisioned_concurrency and self.provisioned_concurrency > self.max_concurrency:
            raise ValueError("provisioned_concurrency must not exceed max_concurrency")
        return self


class AsyncInference(_Model):
    """Asynchronous inference: requests are queued, results written to `output_path`."""

    output_path: str
    failure_path: str | None = None
    max_concurrent_invocations_per_replica: int | None = Field(default=None, ge=1, le=1000)
    success_topic: str | None = Field(
        default=None,
        description="SNS topic ARN notified when a request completes (SageMaker only).",
    )
    error_topic: str | None = Field(
        default=None, description="SNS topic ARN notified when a request fails (SageMaker only)."
    )
    scale_to_zero: bool = Field(
        default=False,
        description="Scale between 0 and resources.max_replicas on the request backlog "
        "(SageMaker only).",
    )
    target_backlog_per_replica: float | None = Field(
        default=None,
        gt=0,
        description="Queued requests per instance to keep with scale_to_zero (default 5).",
    )

    @field_validator("output_path", "failure_path")
    @classmethod
    def _bucket_uri(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("s3://", "gs://", "file://")):
            raise ValueError(f"{value!r} must be an s3://, gs:// or file:// URI")
        return value

    @field_validator("success_topic", "error_topic")
    @classmethod
    def _topic_arn(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not SNS_TOPIC_ARN.match(value):
            raise ValueError(
                f"{info.field_name} {value!r} is not an SNS topic ARN: use e.g. "
                "'arn:aws:sns:us-east-1:123456789012:inference-done'"
            )
        return value

    @model_validator(mode="after")
    def _backlog_target(self) -> AsyncInference:
        if self.target_backlog_per_replica is not None and not self.scale_to_zero:
            raise ValueError(
                "target_backlog_per_replica applies only with scale_to_zero: true; set both "
                "or remove it"
            )
        return self

    def hash_content(self) -> dict[str, Any]:
        """The section as spec hashes see it: fields added after the first release count only
        when set, so versions from before them keep their hashes."""
        content = self.model_dump(mode="json")
        for key, default in _ASYNC_ADDED.items():
            if content.get(key) == default:
                content.pop(key)
        return content


_ASYNC_ADDED: dict[str, Any] = {
    "success_topic": None,
    "error_topic": None,
    "scale_to_zero": False,
    "target_backlog_per_replica": None,
}


# Startup budgets every backend accepts: SageMaker's ContainerStartupHealthCheckTimeoutInSeconds
# and ModelDataDownloadTimeoutInSeconds take 60-3600 s (botocore); a Vertex AI container's
# deployment timeout is at most 2 h; the local backend takes anything.
STARTUP_TIMEOUT_S = (60, 3600)
# Liveness checks: Vertex AI probes take whole seconds and counts >= 1; the upper bounds only
# catch unit mix-ups (milliseconds given as seconds).
PROBE_PERIOD_S = (1, 300)
PROBE_TIMEOUT_S = (1, 300)
PROBE_FAILURES = (1, 100)


class HealthCheck(_Model):
    """How long a new replica may take to start, and how running replicas are checked.

    Every field is optional; an omitted one keeps the platform's default. Per backend:

    - `startup_timeout_s`: SageMaker ContainerStartupHealthCheckTimeoutInSeconds and
      ModelDataDownloadTimeoutInSeconds (not sent for serverless versions, whose budget is
      SageMaker's fixed 3 minutes); Vertex AI a startup probe (period x failure threshold
      covering it) and the container's deployment timeout; local the readiness wait.
    - `period_s`, `timeout_s`, `failure_threshold`: Vertex AI the health probe (a failing
      replica gets no traffic until it answers again); local the supervisor's checks (taken out
      of routing, restarted after `failure_threshold` misses in a row). SageMaker has no
      configurable liveness check, so they are not used there (no error: one spec, every
      backend).
    """

    startup_timeout_s: int | None = Field(
        default=None,
        description="Seconds a new replica may take to download, load and answer its first "
        f"health check ({STARTUP_TIMEOUT_S[0]}-{STARTUP_TIMEOUT_S[1]}).",
    )
    period_s: int | None = Field(
        default=None, description="Seconds between health checks of a running replica."
    )
    timeout_s: int | None = Field(
        default=None, description="Seconds one health check may take before it counts as failed."
    )
    failure_threshold: int | None = Field(
        default=None,
        description="Failed checks in a row after which a running replica counts as unhealthy.",
    )

    @field_validator("startup_timeout_s")
    @classmethod
    def _startup(cls, value: int | None) -> int | None:
        low, high = STARTUP_TIMEOUT_S
        if value is not None and not low <= value <= high:
            raise ValueError(
                f"startup_timeout_s must be {low}-{high} seconds, got {value}: SageMaker accepts "
                f"{low}-{high} (ContainerStartupHealthCheckTimeoutInSeconds), so this range "
                "deploys on every backend"
            )
        return value

    @field_validator("period_s", "timeout_s", "failure_threshold")
    @classmethod
    def _probe(cls, value: int | None, info: ValidationInfo) -> int | None:
        field = str(info.field_name)
        low, high = {
            "period_s": PROBE_PERIOD_S,
            "timeout_s": PROBE_TIMEOUT_S,
            "failure_threshold": PROBE_FAILURES,
        }[field]
        if value is not None and not low <= value <= high:
            unit = "" if field == "failure_threshold" else " seconds"
            raise ValueError(f"{field} must be {low}-{high}{unit}, got {value}")
        return value

    @property
    def is_default(self) -> bool:
        """True when no field is set (the same as giving no health check at all)."""
        return self == HealthCheck()


_SCALING_FIELDS = {"min_replicas": True, "max_replicas": True}


class VersionSpec(_Model):
    """An immutable deployment unit. Changing anything but the name or the scaling (replica
    counts, autoscaling) means a new version; scaling changes in place."""

    name: str
    model: str | None = Field(
        default=None,
        description="Model artifact: s3://, gs://, file:// URI or a local directory.",
    )
    image: str | None = Field(
        default=None, description="Serving image; the endpointkit image when omitted."
    )
    # A prebuilt framework container instead of an image (endpointkit.frameworks)
    framework: Framework | None = Field(default=None, description="e.g. 'sklearn'")
    framework_version: str | None = Field(default=None, description="e.g. '1.2-1'")
    py_version: str | None = Field(default=None, description="SageMaker's, e.g. 'py310'")
    predictor: str | None = Field(
        default=None, description="'module:Class' that serves the model (ENDPOINTKIT_PREDICTOR)."
    )
    env: dict[str, str] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    autoscaling: Autoscaling | None = None
    serverless: Serverless | None = None
    async_inference: AsyncInference | None = None
    health: HealthCheck | None = Field(
        default=None,
        description="Startup budget and health checks; omitted: each platform's defaults.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _check_name(value, VERSION_NAME, "version name", "v2")
        if value in RESERVED_VERSION_NAMES:
            raise ValueError(f"version name {value!r} is reserved by Vertex AI: choose another")
        return value

    @field_validator("predictor")
    @classmethod
    def _predictor(cls, value: str | None) -> str | None:
        if value is not None and not PREDICTOR_REF.match(value):
            raise ValueError(f"predictor {value!r} must look like 'package.module:ClassName'")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "://" in value and not value.startswith(ARTIFACT_SCHEMES):
            raise ValueError(
                f"model {value!r}: only s3://, gs://, file:// URIs or local paths are supported"
            )
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_ENV:
            raise ValueError(f"env has {len(value)} entries; SageMaker allows at most {MAX_ENV}")
        for key, item in value.items():
            if not ENV_NAME.match(key):
                raise ValueError(f"env name {key!r} is not a valid environment variable name")
            if key.startswith("AIP_"):
                raise ValueError(
                    f"env name {key!r}: AIP_* variables are set by Vertex AI and may not be set "
                    "by a version"
                )
            if len(key) > 1024 or len(item) > 1024:
                raise ValueError(f"env {key!r}: names and values are limited to 1024 characters")
        return value

    @model_validator(mode="after")
    def _modes(self) -> VersionSpec:
        if self.serverless is not None:
            if self.autoscaling is not None:
                raise ValueError("a serverless version scales by itself: remove autoscaling")
            if self.resources.accelerator_count or self.resources.instance_type:
                raise ValueError(
                    "a serverless version takes no instance_type or accelerators: remove them"
                )
            if self.async_inference is not None:
                raise ValueError("serverless and async_inference cannot be combined")
        if self.autoscaling is not None and self.resources.max_replicas is None:
            raise ValueError("autoscaling needs resources.max_replicas (the upper bound)")
        if self.async_inference is not None and self.async_inference.scale_to_zero:
            if self.autoscaling is not None:
                raise ValueError(
                    "async_inference.scale_to_zero scales on the request backlog: remove "
                    "autoscaling (its targets need running instances)"
                )
            if self.resources.max_replicas is None:
                raise ValueError(
                    "async_inference.scale_to_zero needs resources.max_replicas (the upper bound)"
                )
        problem = framework_problem(self)
        if problem is not None:
            raise _FieldError(*problem)
        return self

    @property
    def spec_hash(self) -> str:
        """Stable content hash of everything but the name (12 hex characters).

        Two versions with the same content hash deploy the same thing. Defaults are included,
        so a spec that spells out a default hashes the same as one that omits it. Scaling
        (replica counts and autoscaling) is left out: it changes in place, see `scaling`.
        """
        content = self.model_dump(
            mode="json",
            exclude={"name": True, "autoscaling": True, "resources": _SCALING_FIELDS},
        )
        if self.health is None or self.health.is_default:
            content.pop("health", None)  # hashes of versions from before the field stay the same
        for field in ("framework", "framework_version", "py_version"):
            if content.get(field) is None:
                content.pop(field, None)  # likewise
        if self.async_inference is not None:
            content["async_inference"] = self.async_inference.hash_content()
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def scaling(self) -> Scaling | None:
        """Replicas and autoscaling (None for serverless versions, which scale by themselves)."""
        if self.serverless is not None:
            return None
        res = self.resources
        return Scaling(
            min_replicas=res.min_replicas,
            max_replicas=res.max_replicas or res.min_replicas,
            autoscaling=self.autoscaling,
        )

    def with_scaling(self, scaling: Scaling) -> VersionSpec:
        """This version with other replica counts and autoscaling (same name, same hash)."""
        data = self.model_dump()
        data["resources"].update(
            min_replicas=scaling.min_replicas, max_replicas=scaling.max_replicas
        )
        data["autoscaling"] = scaling.autoscaling
        return VersionSpec.model_validate(data)

    def effective_env(self) -> dict[str, str]:
        """The environment the serving process gets: `env` plus the predictor reference."""
        env = dict(self.env)
        if self.predictor:
            env.setdefault("ENDPOINTKIT_PREDICTOR", self.predictor)
        return env


class Shadow(_Model):
    """A version that gets a copy of `sample_percent` of requests; its answers are discarded."""

    version: str
    sample_percent: int = Field(default=100, ge=1, le=100)


class Gates(_Model):
    """Health gates checked while a rollout bakes; any failure rolls traffic back.

    `max_error_rate` and `max_p99_latency_ms` are measured on `probe` requests sent to the new
    version during each bake (so they need `probe` instances). `check` names a function
    `check(state: EndpointState) -> bool` ("module:function"); False or an exception fails the
    gate. `alarms` are the platform's metric alarm names (CloudWatch on SageMaker): each must
    be OK when the rollout starts, and one going into ALARM during a bake rolls it back.
    """

    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    max_p99_latency_ms: float | None = Field(default=None, gt=0)
    probe: list[Any] | None = Field(default=None, min_length=1)
    probes_per_check: int = Field(default=10, ge=1, le=1000)
    check: str | None = None
    alarms: list[str] = Field(default_factory=list, max_length=10)
    check_interval_s: float = Field(default=10.0, gt=0)

    @field_validator("check")
    @classmethod
    def _check_ref(cls, value: str | None) -> str | None:
        if value is not None and not PREDICTOR_REF.match(value):
            raise ValueError(f"check {value!r} must look like 'package.module:function'")
        return value

    @model_validator(mode="after")
    def _probe_needed(self) -> Gates:
        if (self.max_error_rate is not None or self.max_p99_latency_ms is not None) and not (
            self.probe
        ):
            raise ValueError(
                "max_error_rate and max_p99_latency_ms are measured on probe requests: "
                "give gates.probe a list of sample instances"
            )
        return self


class AllAtOnce(_Model):
    """Shift all traffic at once; gates are checked for `bake_s` afterwards."""

    type: Literal["all_at_once"] = "all_at_once"
    bake_s: float = Field(default=0, ge=0, le=86400)
    gates: Gates = Field(default_factory=Gates)


class Canary(_Model):
    """Send `percent` to the new version, bake, then shift the rest."""

    type: Literal["canary"] = "canary"
    percent: int = Field(default=10, ge=1, le=99)
    bake_s: float = Field(default=300, ge=0, le=86400)
    gates: Gates = Field(default_factory=Gates)


class Linear(_Model):
    """Shift `step_percent` more every `interval_s`, checking gates at each step."""

    type: Literal["linear"] = "linear"
    step_percent: int = Field(default=10, ge=1, le=50)
    interval_s: float = Field(default=60, ge=0, le=86400)
    gates: Gates = Field(default_factory=Gates)


class BlueGreen(_Model):
    """Shift everything to the new (green) version, bake, then undeploy the old (blue) ones."""

    type: Literal["blue_green"] = "blue_green"
    bake_s: float = Field(default=300, ge=0, le=86400)
    gates: Gates = Field(default_factory=Gates)


RolloutStrategy = Annotated[AllAtOnce | Canary | Linear | BlueGreen, Field(discriminator="type")]


class EndpointSpec(_Model):
    """What an endpoint should be. `endpointkit apply` makes the live endpoint match it."""

    name: str
    backend: str = Field(default="local", description="local, mock, sagemaker, vertex, or a plugin")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Backend settings, e.g. region, project, role_arn."
    )
    versions: list[VersionSpec] = Field(min_length=1, max_length=MAX_VERSIONS)
    traffic: TrafficSplit | None = Field(
        default=None, description="Percent per version; defaults to 100 for a single version."
    )
    shadow: Shadow | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, ENDPOINT_NAME, "endpoint name", "churn-model")

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS} tags are allowed, got {len(value)}")
        for key, item in value.items():
            if not LABEL_KEY.match(key):
                raise ValueError(
                    f"tag key {key!r}: use lowercase letters, digits, '_' and '-', starting with "
                    "a letter, at most 63 characters (Vertex AI label rules)"
                )
            if not LABEL_VALUE.match(item):
                raise ValueError(
                    f"tag {key!r} value {item!r}: use lowercase letters, digits, '_' and '-', "
                    "at most 63 characters (Vertex AI label rules)"
                )
            if key.startswith(("managed-by", "endpointkit")):
                raise ValueError(f"tag key {key!r} is reserved for endpointkit's own tags")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EndpointSpec:
        names = [v.name for v in self.versions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise _FieldError(
                "versions", f"version names must be unique; repeated: {', '.join(duplicates)}"
            )
        if self.traffic is None:
            if len(self.versions) > 1:
                raise _FieldError(
                    "traffic",
                    f"traffic is required when there are several versions ({', '.join(names)}); "
                    "e.g. traffic: {" + f"{names[0]}: 100" + "}",
                )
            object.__setattr__(self, "traffic", TrafficSplit({names[0]: 100}))
        unknown = [v for v in self.traffic_split if v not in names]
        if unknown:
            raise _FieldError(
                "traffic",
                f"traffic names unknown version(s) {', '.join(unknown)}; "
                f"declared versions: {', '.join(names)}",
            )
        if self.shadow is not None:
            if self.shadow.version not in names:
                raise _FieldError(
                    "shadow.version",
                    f"shadow version {self.shadow.version!r} is not declared in versions "
                    f"({', '.join(names)})",
                )
            if self.traffic_split[self.shadow.version]:
                raise _FieldError(
                    "shadow.version",
                    f"shadow version {self.shadow.version!r} must not also serve live traffic; "
                    "set its traffic to 0",
                )
        return self

    @property
    def traffic_split(self) -> TrafficSplit:
        """The split, with the single-version default applied."""
        return self.traffic if self.traffic is not None else TrafficSplit({})

    def version(self, name: str) -> VersionSpec:
        """The version named `name`; ValidationError if the spec has none."""
        for version in self.versions:
            if version.name == name:
                return version
        raise ValidationError(
            f"spec for endpoint {self.name!r} has no version {name!r}; "
            f"declared: {', '.join(v.name for v in self.versions)}",
            endpoint=self.name,
            version=name,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> EndpointSpec:
        """Load a spec from a YAML or JSON file (see `load_spec`)."""
        return load_spec(path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "spec") -> EndpointSpec:
        """Validate a mapping; errors name the offending field, e.g. `versions[1].name`."""
        try:
            return cls.model_validate(dict(data))
        except PydanticValidationError as exc:
            raise _spec_error(exc, source) from None


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in ("function-after", "function-before") and not str(part).startswith(
            ("function-", "constrained-")
        ):
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _spec_error(exc: PydanticValidationError, source: str) -> ValidationError:
    lines = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        path = _field_path(tuple(error["loc"]))
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, _FieldError):
            prefix = path.removesuffix("(top level)")
            path = f"{prefix}.{cause.field}" if prefix else cause.field
        lines.append(f"{path}: {message}")
    summary = "; ".join(lines)
    return ValidationError(
        f"{source} is invalid: {summary}.",
        hint="Fix the field(s) named above and try again.",
    )


def load_spec(path: str | Path) -> EndpointSpec:
    """Read an EndpointSpec from a .yaml/.yml or .json file.

    Relative local model paths are resolved against the spec file's folder, so a spec can be
    applied from any working directory. Raises ValidationError naming the file and field.
    """
    spec_path = Path(path)
    try:
        text = spec_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(
            f"cannot read spec file {str(spec_path)!r}: {exc.strerror or exc}.",
            hint="Check the path.",
        ) from None
    try:
        if spec_path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml  # lazy: keeps `import endpointkit` light

            data = yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{spec_path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}."
        ) from None
    except ValueError as exc:
        raise ValidationError(f"{spec_path} is not valid JSON/YAML: {exc}") from None
    except Exception as exc:  # yaml.YAMLError does not subclass ValueError
        raise ValidationError(f"{_yaml_problem(spec_path, exc)}.") from None
    if not isinstance(data, dict):
        raise ValidationError(
            f"{spec_path} must hold a mapping with at least 'name' and 'versions'."
        )
    for version in data.get("versions") or []:
        if isinstance(version, dict) and isinstance(version.get("model"), str):
            version["model"] = _resolve_model_path(version["model"], spec_path.parent)
    return EndpointSpec.from_dict(data, source=str(spec_path))


def _yaml_problem(path: Path, exc: Exception) -> str:
    """`FILE:LINE:COLUMN: not valid YAML: PROBLEM (while CONTEXT)` on one line.

    PyYAML's own text names `<unicode string>` (we parse text, to resolve paths first) and
    spans several lines with a caret drawing.
    """
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return f"{path} is not valid YAML: {' '.join(str(exc).split())}"
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    where = f" (line {context_mark.line + 1})" if context_mark is not None else ""
    while_ = f" ({context}{where})" if context else ""
    return f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}{while_}"


def _resolve_model_path(model: str, base: Path) -> str:
    if "://" in model or Path(model).is_absolute():
        return model
    return str((base / model).resolve())
