"""The SageMaker backend: the Backend primitives, composed from the modules beside it.

Resources it creates, all tagged `managed-by=endpointkit` plus `endpointkit:endpoint`: a Model
per version and an EndpointConfig per change of the variant set (`_variants.py`), the
Endpoint, and its history document in the artifact bucket (`_history.py`, `_artifacts.py`).

Every change is validated before the first call (`_validate.py`). Every AWS call goes through
`_client.Aws`: errors translated by `_errors.aws_errors` (botocore never leaks), control-plane
calls retried by the `retry.control_plane` policy. Reading an endpoint is `_state.py`,
scaling `_autoscaling.py`, invoking `_runtime.py`.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from endpointkit.adapters.base import Backend
from endpointkit.adapters.limits import SAGEMAKER
from endpointkit.adapters.sagemaker._artifacts import ArtifactBucket
from endpointkit.adapters.sagemaker._async import MAX_ASYNC_PAYLOAD, AsyncRuntime
from endpointkit.adapters.sagemaker._autoscaling import Autoscaler, backlog_scaled, registration
from endpointkit.adapters.sagemaker._client import Aws
from endpointkit.adapters.sagemaker._errors import BACKEND
from endpointkit.adapters.sagemaker._history import History, HistoryDoc, Pending
from endpointkit.adapters.sagemaker._naming import (
    ENDPOINT_TAG,
    HISTORY_TAG,
    MANAGED_BY,
    MANAGED_TAG,
)
from endpointkit.adapters.sagemaker._native import (
    GUARDRAILS_HINT,
    GUARDRAILS_REFUSED,
    alarms_firing,
    start_native,
)
from endpointkit.adapters.sagemaker._runtime import RUNTIME_READ_TIMEOUT_S, Runtime
from endpointkit.adapters.sagemaker._state import SETTLED, EndpointReader, live_weights
from endpointkit.adapters.sagemaker._validate import (
    SettingIgnoredWarning,
    shadow_refusal,
    validate,
    warn_unheld_max,
)
from endpointkit.adapters.sagemaker._variants import (
    DEFAULT_INSTANCE_TYPE,
    DeploymentConfig,
    Variants,
    container_environment,
    production_variant,
)
from endpointkit.async_invocation import AsyncInvocation, AsyncOutcome
from endpointkit.errors import (
    AlreadyExists,
    EndpointKitError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from endpointkit.invocation import InvokeRequest, InvokeResult, StreamResult
from endpointkit.spec import RolloutStrategy, Scaling, Shadow, TrafficSplit, VersionSpec
from endpointkit.state import EndpointState, Event

__all__ = [
    "AsyncInvocation",
    "DeploymentConfig",
    "SageMakerBackend",
    "SettingIgnoredWarning",
    "container_environment",
    "production_variant",
]

log = logging.getLogger("endpointkit.sagemaker")


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
    - `deployment_config`: refused (see `GUARDRAILS_REFUSED`): SageMaker's guardrails only
      apply to updates that keep every variant name, which endpointkit's changes never do
    - `notification_queue_url`: an SQS queue subscribed to the async_inference SNS topics;
      results are read from its notifications first (env ENDPOINTKIT_SAGEMAKER_QUEUE)
    - `poll_s`, `max_poll_s`: status polling; `read_timeout`, `connect_timeout`,
      `max_pool_connections`: runtime client; `retry_attempts`, `retry_deadline_s`.
    """

    name = "sagemaker"
    deploy_options: ClassVar[frozenset[str]] = frozenset({"deployment_config"})
    capabilities = SAGEMAKER.capabilities
    max_payload_bytes = SAGEMAKER.max_payload_bytes
    max_custom_attributes = SAGEMAKER.max_custom_attributes

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
        notification_queue_url: str | None = None,
    ) -> None:
        if keep_configs < 1:
            raise ValidationError("keep_configs must be at least 1 (the live config).")
        if not 0 < data_capture_percent <= 100:
            raise ValidationError("data_capture_percent must be 1-100.")
        self.poll_first_s = poll_s
        self.poll_max_s = max_poll_s
        self.sleep = sleep
        if DeploymentConfig.coerce(deployment_config) is not None:
            raise ValidationError(
                GUARDRAILS_REFUSED.format(what="the deployment_config setting"),
                hint=GUARDRAILS_HINT,
                backend=BACKEND,
            )
        self._aws = Aws(
            region=region,
            profile=profile,
            credentials={
                "aws_access_key_id": aws_access_key_id,
                "aws_secret_access_key": aws_secret_access_key,
                "aws_session_token": aws_session_token,
            },
            endpoint_url=endpoint_url,
            runtime_endpoint_url=runtime_endpoint_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_pool_connections,
            retry_attempts=retry_attempts,
            retry_deadline_s=retry_deadline_s,
            sleep=sleep,
            clock=self.clock,
        )
        self._bucket = ArtifactBucket(
            self._aws,
            bucket=artifact_bucket or os.environ.get("ENDPOINTKIT_SAGEMAKER_BUCKET"),
            prefix=artifact_prefix.strip("/"),
        )
        self._history = History(self._aws, self._bucket)
        self._reader = EndpointReader(self._aws, fetch_logs=fetch_logs, not_found=self.not_found)
        self._variants = Variants(
            self._aws,
            self._bucket,
            self._reader,
            role_arn=role_arn or os.environ.get("ENDPOINTKIT_SAGEMAKER_ROLE_ARN"),
            image=image or os.environ.get("ENDPOINTKIT_SAGEMAKER_IMAGE"),
            instance_type=instance_type,
            keep_configs=keep_configs,
            data_capture=data_capture,
            data_capture_uri=data_capture_uri,
            data_capture_percent=data_capture_percent,
        )
        self._autoscaler = Autoscaler(self._aws, self._reader, self._history)
        self._runtime = Runtime(self._aws, self._bucket)
        self._queue_url = notification_queue_url or os.environ.get("ENDPOINTKIT_SAGEMAKER_QUEUE")
        #: Endpoints with a change in flight whose outcome is not in their history yet.
        self._pending_names: set[str] = set()

    @property
    def region(self) -> str:
        """The AWS region in use (setting, AWS_REGION, or the profile's)."""
        return self._aws.region

    def close(self) -> None:
        self._aws.close()

    # -- primitives: reading ---------------------------------------------------------------------

    def get(self, name: str) -> EndpointState:
        desc = self._reader.describe(name, "get")
        try:
            config = self._reader.config(desc["EndpointConfigName"], name)
        except NotFound:
            if desc.get("EndpointStatus") != "Deleting":
                raise
            config = {}  # `delete` removes the configs while the endpoint goes
        state = self._reader.state(name, desc, config)
        if name in self._pending_names and desc.get("EndpointStatus") in SETTLED:
            try:
                self._reconcile(name, desc)
            except EndpointKitError as exc:
                # Recording the outcome is bookkeeping: the state read above is still right,
                # and the next read (or `history`) tries again.
                log.warning("could not settle the history of %r yet: %s", name, exc)
        return state

    def list_endpoints(self) -> list[EndpointState]:
        states: list[EndpointState] = []
        listing = self._aws.pages(
            "sagemaker",
            "list_endpoints",
            operation="list",
            MaxResults=100,
            SortBy="Name",
            SortOrder="Ascending",
        )
        for page in listing:
            for summary in page.get("Endpoints", []):
                if not self._reader.owned(summary["EndpointArn"], summary["EndpointName"]):
                    continue
                try:
                    states.append(self.get(summary["EndpointName"]))
                except NotFound:
                    continue  # deleted while listing
        return states

    def history(self, name: str) -> list[Event]:
        doc = self._history.read(name)
        if doc is None:
            raise self.not_found(name, "history")
        if doc.pending:
            self._reconcile(name)
            doc = self._history.read(name) or doc
        return list(doc.events)

    # -- primitives: changing --------------------------------------------------------------------

    def _create(self, name: str, version: VersionSpec, tags: Mapping[str, str]) -> EndpointState:
        validate(self._variants, name, version)
        if self._aws.exists("describe_endpoint", name, EndpointName=name):
            # Someone else's endpoint of that name (ours would have been found by `exists`):
            # refuse before creating any model or config for it.
            raise AlreadyExists(
                f"endpoint {name!r} already exists on sagemaker ({self._aws.region}) and was not "
                "created by endpointkit.",
                hint="Pick another name; endpointkit never changes endpoints it did not create.",
                backend=BACKEND,
                operation="create",
                endpoint=name,
            )
        history_uri = self._history.uri(name)
        all_tags = {
            **dict(tags),
            MANAGED_TAG: MANAGED_BY,
            ENDPOINT_TAG: name,
            HISTORY_TAG: history_uri,
        }
        try:
            model = self._variants.ensure_model(name, version)
            variants = [self._variants.variant(version, model, 1.0)]
            config = self._variants.ensure_config(
                name,
                variants,
                shadow=[],
                async_config=self._variants.async_config(version),
                capture=self._variants.capture_config(name),
            )
            self._variants.create_endpoint(name, config, all_tags)
        except EndpointKitError as error:
            self._variants.undo_create(name, error)
            raise

        def record(doc: HistoryDoc) -> None:
            doc.events = []  # a new endpoint of an old name starts its own history
            doc.append("created", version=version.name, message="endpoint created")
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

        self._history.update(name, record)
        self._pending_names.add(name)
        return self.get(name)

    def deploy(
        self, name: str, version: VersionSpec, traffic: int = 0, **options: Any
    ) -> EndpointState:
        """Backend.deploy; a `deployment_config` option is refused before any call (see
        `GUARDRAILS_REFUSED`)."""
        if DeploymentConfig.coerce(options.get("deployment_config")) is not None:
            raise ValidationError(
                GUARDRAILS_REFUSED.format(what=f"deploying {version.name!r}"),
                hint=GUARDRAILS_HINT,
                backend=BACKEND,
                operation="deploy",
                endpoint=name,
                version=version.name,
            )
        return super().deploy(name, version, traffic, **options)

    def _validate_version(self, endpoint: str, version: VersionSpec) -> None:
        """Unsupported features (base class), then SageMaker's own rules, before any call."""
        super()._validate_version(endpoint, version)
        validate(self._variants, endpoint, version)
        if version.scaling is not None and not backlog_scaled(version):
            warn_unheld_max(version.scaling, f"version {version.name!r} of {endpoint!r}")

    def _deploy(
        self, name: str, version: VersionSpec, traffic: TrafficSplit, **options: Any
    ) -> EndpointState:
        """`options`: `deployment_config` never gets here (refused in `deploy`)."""
        desc, config = self._reader.live(name, "deploy")
        state = self._reader.state(name, desc, config)
        validate(self._variants, name, version, config)
        holder = self._reader.versions(name, config).get(version.name)
        if holder is not None:
            raise ValidationError(
                f"endpoint {name!r} has a SageMaker variant named {version.name!r}, serving "
                f"version {holder!r} since a native rollout kept the variant's name; a new "
                "version gets a variant of its own name, and variant names are unique.",
                hint="Give the new version another name.",
                backend=BACKEND,
                operation="deploy",
                endpoint=name,
                version=version.name,
            )
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
        model = self._variants.ensure_model(name, version)
        weights = live_weights(desc, config)
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
        production.append(self._variants.variant(version, model, new_weight))
        new_config = self._variants.switch(
            name,
            config,
            desc,
            production,
            [],
            exclude_weights=exclude_weights,
        )
        return self._start_pending(
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

    def _undeploy(self, name: str, version: str, traffic: TrafficSplit) -> EndpointState:
        desc, config = self._reader.live(name, "undeploy")
        state = self._reader.state(name, desc, config)
        weights = live_weights(desc, config)
        variant = _variant_of(state, version)
        production = [
            {**v, "InitialVariantWeight": weights.get(v["VariantName"], 0.0)}
            for v in config.get("ProductionVariants", [])
            if v["VariantName"] != variant
        ]
        removed: dict[str, Any] = next(
            (v for v in config.get("ProductionVariants", []) if v["VariantName"] == variant), {}
        )
        self._autoscaler.deregister(name, variant)
        # Weights are relative: with the remaining variants' weights retained, the removed
        # version's share is spread over them in proportion, which is what `traffic` says.
        new_config = self._variants.switch(
            name,
            config,
            desc,
            production,
            list(config.get("ShadowProductionVariants") or []),
            exclude_weights=False,
        )
        return self._start_pending(
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

    def _set_traffic(self, name: str, traffic: TrafficSplit) -> EndpointState:
        desc, config = self._reader.live(name, "set_traffic")
        state = self._reader.state(name, desc, config)
        weights = traffic.to_weights()
        names = self._reader.versions(name, config)
        desired = [
            {"VariantName": v, "DesiredWeight": weights.get(names[v], 0.0)}
            for v in (p["VariantName"] for p in config.get("ProductionVariants", []))
        ]
        self._aws.mutate(
            "update_endpoint_weights_and_capacities",
            operation="set_traffic",
            endpoint=name,
            applied=lambda: self._reader.asks_for(name, "set_traffic", "DesiredWeight", desired),
            EndpointName=name,
            DesiredWeightsAndCapacities=desired,
        )

        def record(doc: HistoryDoc) -> None:
            doc.append(
                "traffic",
                message="traffic changed",
                before=dict(state.traffic.root),
                after=dict(traffic.root),
            )

        self._history.update(name, record)
        return self.get(name)

    def _set_shadow(self, name: str, shadow: Shadow | None) -> EndpointState:
        desc, config = self._reader.live(name, "set_shadow")
        state = self._reader.state(name, desc, config)
        weights = live_weights(desc, config)
        variants = {
            v["VariantName"]: dict(v)
            for v in [
                *config.get("ProductionVariants", []),
                *(config.get("ShadowProductionVariants") or []),
            ]
        }
        current = state.shadow.version if state.shadow else None
        names = self._reader.versions(name, config)
        context: dict[str, Any] = {"backend": BACKEND, "operation": "set_shadow", "endpoint": name}
        if shadow is not None:
            refusal = shadow_refusal(config)
            if refusal is not None:
                raise ValidationError(
                    f"SageMaker cannot shadow on endpoint {name!r}: {refusal}, and shadow "
                    "variants are for real-time instance-backed endpoints only.",
                    hint="Compare the version on a real-time endpoint of its own, or probe it "
                    "with invoke(..., version=...).",
                    **context,
                )
            if current is not None and current != shadow.version:
                raise ValidationError(
                    f"endpoint {name!r} already shadows to {current!r}.",
                    hint="Clear the shadow first (set_shadow(None)).",
                    **context,
                )
            shadow_variant = _variant_of(state, shadow.version)
            production_names = [v for v in variants if v != shadow_variant]
            if len(production_names) != 1:
                serving = ", ".join(names[v] for v in production_names)
                raise ValidationError(
                    f"SageMaker shadows need exactly one production variant beside the shadow; "
                    f"{name!r} has {len(production_names)} ({serving}).",
                    hint="Undeploy the versions that serve no traffic first.",
                    **context,
                )
            primary = production_names[0]
            primary_weight = weights.get(primary, 0.0) or 1.0
            production = [{**variants[primary], "InitialVariantWeight": primary_weight}]
            # The shadow's sampling rate is its weight relative to the production variant.
            shadows = [
                {
                    **variants[shadow_variant],
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
        new_config = self._variants.switch(
            name,
            config,
            desc,
            production,
            shadows,
            exclude_weights=True,
        )
        return self._start_pending(
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

    # -- rollout gates ---------------------------------------------------------------------------

    def _native_rollout(
        self, name: str, version: VersionSpec, strategy: RolloutStrategy, state: EndpointState
    ) -> EndpointState:
        """Backend._native_rollout: SageMaker's deployment guardrails (`_native.py`)."""
        pending = start_native(
            self._reader, self._variants, self._autoscaler, name, version, strategy
        )
        pending.data.update(self._pending_data(version, pending.data["model"]))

        def record(doc: HistoryDoc) -> None:
            doc.append("rollout", version=version.name, message=f"{pending.message} started")

        self._history.update(name, record)
        return self._start_pending(name, pending)

    def alarms_firing(self, names: Sequence[str], *, endpoint: str) -> list[str]:
        """CloudWatch DescribeAlarms: the named alarms whose state is ALARM."""
        return alarms_firing(self._aws, names, endpoint=endpoint)

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
            return self._autoscaler.live(state)
        except PermissionDenied as error:
            log.warning(
                "cannot detect scaling changes on %r: reading Application Auto Scaling was "
                "denied, so plans propose no scale steps. Grant application-autoscaling:"
                "Describe* to the credentials in use. (%s)",
                state.name,
                error.message,
            )
            return {}

    def _scale(self, name: str, version: str, scaling: Scaling) -> EndpointState:
        """UpdateEndpointWeightsAndCapacities for the instance count (in place, no new fleet)
        and Application Auto Scaling for the range and targets, registered once the count has
        settled. Autoscaling is deregistered first so it cannot fight the new count; if the
        change is refused, what was deregistered is put back and the error says so."""
        warn_unheld_max(scaling, f"scaling {version!r} of {name!r}")
        desc, config = self._reader.live(name, "scale")
        state = self._reader.state(name, desc, config)
        before = self._autoscaler.live(state).get(version)
        live = state.version(version)
        variant = _variant_of(state, version)
        current = live.replicas if live is not None and live.replicas else scaling.min_replicas
        count = (
            min(max(current, scaling.min_replicas), scaling.max_replicas)
            if scaling.autoscaling is not None
            else scaling.min_replicas
        )
        removed = self._autoscaler.deregister(name, variant)
        message = (
            f"scaled from {before.describe() if before else 'unknown'} to {scaling.describe()} "
            "in place"
        )
        data: dict[str, Any] = {"variant": variant}
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
                    self._autoscaler.register(name, variant, data["autoscaling"])
            else:
                self._autoscaler.set_instance_count(name, variant, count)
        except EndpointKitError as error:
            self._autoscaler.put_back(name, variant, removed, before, current, error)
            raise
        if count == current:

            def record(doc: HistoryDoc) -> None:
                doc.append("scaled", version=version, message=message)

            self._history.update(name, record)
            return self.get(name)
        return self._start_pending(
            name,
            Pending(
                "scale", desc["EndpointConfigName"], version=version, message=message, data=data
            ),
        )

    def delete(self, name: str) -> None:
        """Delete the endpoint, its autoscaling, configs, models and uploaded artifacts (the
        history stays, as an audit log). A name whose endpoint is gone but whose configs,
        models or artifacts are left (a refused create that could not undo itself) has those
        removed; NotFound only if there is nothing at all."""
        try:
            desc = self._reader.describe(name, "delete")
        except NotFound:
            if self._aws.exists("describe_endpoint", name, EndpointName=name):
                raise  # someone else's endpoint: never touched
            if not self._variants.leftovers(name):
                raise
            self._variants.remove_all(name)
            return
        config = self._reader.config(desc["EndpointConfigName"], name)
        for variant in [
            *config.get("ProductionVariants", []),
            *(config.get("ShadowProductionVariants") or []),
        ]:
            self._autoscaler.deregister(name, variant["VariantName"])

        def deleting() -> bool:
            try:
                desc = self._aws.sm(
                    "describe_endpoint", operation="delete", endpoint=name, EndpointName=name
                )
            except NotFound:
                return True
            return bool(desc.get("EndpointStatus") == "Deleting")

        self._aws.mutate(
            "delete_endpoint",
            operation="delete",
            endpoint=name,
            applied=deleting,
            EndpointName=name,
        )
        self._variants.remove_all(name)
        self._pending_names.discard(name)

        def record(doc: HistoryDoc) -> None:
            for pending in doc.pending:
                doc.append(
                    "failed",
                    version=pending.version,
                    message=f"{pending.kind} interrupted: the endpoint was deleted",
                )
            doc.pending = []
            doc.append("deleted", message="endpoint deleted")

        self._history.update(name, record)

    # -- invocation ------------------------------------------------------------------------------

    # A pinned version is sent as the variant serving it and the answering variant read back
    # as its version: after a native rollout a variant serves a version of another name.
    def _invoke(self, request: InvokeRequest) -> InvokeResult:
        result = self._runtime.invoke(self._reader.targeted(request))
        return replace(result, version=self._reader.answered(request.endpoint, result.version))

    def _invoke_stream(self, request: InvokeRequest) -> StreamResult:
        result = self._runtime.invoke_stream(self._reader.targeted(request))
        result.version = self._reader.answered(request.endpoint, result.version)
        return result

    max_async_payload_bytes = MAX_ASYNC_PAYLOAD

    @functools.cached_property
    def _queued(self) -> AsyncRuntime:
        """Asynchronous inference (`_async.py`)."""
        return AsyncRuntime(self._aws, self._bucket, self._queue_url)

    def _invoke_async(self, request: InvokeRequest) -> AsyncInvocation:
        return self._queued.queue(self, request)

    def _async_outcome(self, invocation: AsyncInvocation) -> AsyncOutcome:
        return self._queued.outcome(invocation)

    def _find_invocation(self, endpoint: str, inference_id: str) -> AsyncInvocation:
        return self._queued.find(self, endpoint, inference_id)

    # -- history ---------------------------------------------------------------------------------

    def _start_pending(self, name: str, pending: Pending) -> EndpointState:
        """Record the change SageMaker is now making; returns the endpoint as it is now."""

        def record(doc: HistoryDoc) -> None:
            doc.pending = [pending]

        self._history.update(name, record)
        self._pending_names.add(name)
        return self.get(name)

    def _pending_data(self, version: VersionSpec, model: str) -> dict[str, Any]:
        scaling = registration(version)  # registered once the version is live
        return {"model": model, **({"autoscaling": scaling} if scaling else {})}

    def _reconcile(self, name: str, desc: dict[str, Any] | None = None) -> None:
        """Settle pending operations once SageMaker has finished them: record the outcome,
        then register autoscaling (on success) and clean up what is no longer needed."""
        try:
            desc = desc or self._reader.describe(name, "get")
        except NotFound:
            self._pending_names.discard(name)
            return
        raw_status = desc.get("EndpointStatus")
        if raw_status not in SETTLED:
            return
        config = self._reader.config(desc["EndpointConfigName"], name)
        state = self._reader.state(name, desc, config)
        live_config = desc["EndpointConfigName"]
        reason = state.failure_reason or f"the endpoint is {raw_status}"
        outcomes: list[tuple[Pending, bool]] = []

        def record(doc: HistoryDoc) -> None:
            outcomes[:] = doc.settle(live_config, str(raw_status), state.traffic.root, reason)

        doc = self._history.read(name)
        if doc is None or not doc.pending:
            self._pending_names.discard(name)
            return
        self._history.update(name, record)
        self._pending_names.discard(name)
        for pending, ok in outcomes:
            if ok and "autoscaling" in pending.data and pending.version:
                variant = str(pending.data.get("variant") or pending.version)
                self._autoscaler.register(name, variant, pending.data["autoscaling"])
            if not ok and pending.config != live_config:
                # The config never went live: it is no rollback target. Its model goes with
                # the cleanup below unless a kept config uses it.
                self._variants.delete_quietly(
                    "delete_endpoint_config", name, EndpointConfigName=pending.config
                )
                self._reader.forget_config(pending.config)
        if raw_status == "InService":
            self._variants.cleanup(name, live_config)


def _variant_of(state: EndpointState, version: str) -> str:
    """The SageMaker variant that serves `version` (its own name unless a native rollout put it
    into another version's variant)."""
    live = state.version(version)
    return str(live.details.get("variant") or version) if live is not None else version
