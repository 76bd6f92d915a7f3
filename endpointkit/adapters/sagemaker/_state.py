"""Reading an endpoint: DescribeEndpoint and its config, ownership tags, and the
`EndpointState` they make (status, versions, traffic, shadow, and where to read a failure).

Endpoint configs and ownership tags never change once set, so both are cached; so is the
log hint of each failure, which costs a CloudWatch Logs query.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from endpointkit.adapters.sagemaker._client import Aws
from endpointkit.adapters.sagemaker._errors import BACKEND, log_group
from endpointkit.adapters.sagemaker._naming import (
    ENDPOINT_TAG,
    MANAGED_BY,
    MANAGED_TAG,
    VERSION_TAG,
    hash_from_model_name,
    tags_dict,
    version_from_model_name,
)
from endpointkit.errors import EndpointKitError, NotFound
from endpointkit.invocation import InvokeRequest
from endpointkit.spec import Shadow, TrafficSplit
from endpointkit.state import EndpointState, Status, VersionState

__all__ = ["SETTLED", "EndpointReader", "live_weights"]

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
#: Endpoint statuses in which SageMaker has finished a change, for better or worse.
SETTLED = frozenset({"InService", "Failed", "UpdateRollbackFailed", "OutOfService"})
_VARIANT_STATUS: dict[str, Status] = {
    "Creating": Status.CREATING,
    "Updating": Status.UPDATING,
    "ActivatingTraffic": Status.UPDATING,
    "Baking": Status.UPDATING,
    "Deleting": Status.DELETING,
}
_ERROR_LINE = re.compile(r"error|exception|traceback|failed", re.IGNORECASE)


class EndpointReader:
    """Describes endpoints endpointkit created; `not_found` makes the error for a missing one."""

    def __init__(
        self, aws: Aws, *, fetch_logs: bool, not_found: Callable[[str, str], NotFound]
    ) -> None:
        self._aws = aws
        self._fetch_logs = fetch_logs
        self._not_found = not_found
        self._configs: dict[str, dict[str, Any]] = {}
        self._tags: dict[str, dict[str, str]] = {}
        self._log_hints: dict[tuple[str, str], str] = {}
        self._model_versions: dict[str, str] = {}
        #: endpoint -> variant -> version, as last read (every `state` refreshes it).
        self._variant_versions: dict[str, dict[str, str]] = {}

    def describe(self, name: str, operation: str) -> dict[str, Any]:
        """DescribeEndpoint; NotFound if it is missing or endpointkit did not create it."""
        try:
            desc: dict[str, Any] = self._aws.sm(
                "describe_endpoint", operation=operation, endpoint=name, EndpointName=name
            )
        except NotFound:
            error = self._not_found(name, operation)
            error.message = f"endpoint {name!r} not found on sagemaker ({self._aws.region})."
            raise error from None
        if not self.owned(desc["EndpointArn"], name):
            raise NotFound(
                f"endpoint {name!r} on sagemaker ({self._aws.region}) was not created by "
                "endpointkit, which leaves it alone.",
                hint="Manage it with the tool that created it, or pick another name.",
                backend=BACKEND,
                operation=operation,
                endpoint=name,
            )
        return desc

    def asks_for(
        self, name: str, operation: str, field: str, desired: list[dict[str, Any]]
    ) -> bool:
        """True if the endpoint's variants already ask for what an
        UpdateEndpointWeightsAndCapacities request (`desired`) sets in `field`
        (DesiredWeight or DesiredInstanceCount): that request went through."""
        variants = {
            v.get("VariantName"): v
            for v in self.describe(name, operation).get("ProductionVariants", [])
        }
        for item in desired:
            live = variants.get(item["VariantName"], {}).get(field)
            if live is None or not math.isclose(float(live), float(item[field]), abs_tol=1e-9):
                return False
        return True

    def live(self, name: str, operation: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The endpoint's description and its live config."""
        desc = self.describe(name, operation)
        return desc, self.config(desc["EndpointConfigName"], name)

    def config(self, config: str, endpoint: str) -> dict[str, Any]:
        """DescribeEndpointConfig, cached (configs are immutable)."""
        with self._aws.lock:
            cached = self._configs.get(config)
        if cached is not None:
            return cached
        data: dict[str, Any] = self._aws.sm(
            "describe_endpoint_config",
            operation="get",
            endpoint=endpoint,
            what=f"endpoint config {config!r}",
            EndpointConfigName=config,
        )
        with self._aws.lock:
            self._configs[config] = data
        return data

    def forget_config(self, config: str) -> None:
        """Drop a deleted config from the cache."""
        with self._aws.lock:
            self._configs.pop(config, None)

    def tags(self, arn: str, endpoint: str) -> dict[str, str]:
        """The resource's tags; cached once endpointkit's ownership tag is among them."""
        with self._aws.lock:
            cached = self._tags.get(arn)
        if cached is not None:
            return cached
        tags: dict[str, str] = {}
        for page in self._aws.pages(
            "sagemaker",
            "list_tags",
            operation="get",
            endpoint=endpoint,
            ResourceArn=arn,
            MaxResults=100,
        ):
            tags.update(tags_dict(page.get("Tags")))
        if tags.get(MANAGED_TAG) == MANAGED_BY:
            with self._aws.lock:
                self._tags[arn] = tags  # ownership never changes once set
        return tags

    def owned(self, arn: str, endpoint: str) -> bool:
        """True if endpointkit created the resource for `endpoint`."""
        tags = self.tags(arn, endpoint)
        return tags.get(MANAGED_TAG) == MANAGED_BY and tags.get(ENDPOINT_TAG) == endpoint

    def version_of(self, endpoint: str, variant: Mapping[str, Any]) -> str:
        """The version a variant serves: its model's. A variant is named after the version it
        was created for, but a native rollout puts another version's model into it in place.
        From the model name when it was not shortened, else from the model's version tag (one
        DescribeModel and ListTags, cached: models never change)."""
        vname, model = str(variant["VariantName"]), str(variant.get("ModelName") or "")
        if hash_from_model_name(endpoint, vname, model) is not None:
            return vname
        parsed = version_from_model_name(endpoint, model)
        if parsed is not None:
            return parsed
        with self._aws.lock:
            cached = self._model_versions.get(model)
        if cached is not None:
            return cached
        try:
            described = self._aws.sm(
                "describe_model", operation="get", endpoint=endpoint, ModelName=model
            )
        except NotFound:
            return vname  # not endpointkit's model naming, and gone: the variant is all we know
        version = self.tags(str(described["ModelArn"]), endpoint).get(VERSION_TAG) or vname
        with self._aws.lock:
            self._model_versions[model] = version
        return version

    def versions(self, endpoint: str, config: Mapping[str, Any]) -> dict[str, str]:
        """Variant name -> the version it serves, for every variant of `config`."""
        return {
            str(v["VariantName"]): self.version_of(endpoint, v)
            for v in [
                *config.get("ProductionVariants", []),
                *(config.get("ShadowProductionVariants") or []),
            ]
        }

    def _variant_map(self, endpoint: str) -> dict[str, str]:
        """Variant -> version for invocations: as last read, else read once now. If it cannot
        be read (no such endpoint: the runtime says so; credentials that may only invoke),
        variants are taken for versions until `state` reads the endpoint."""
        with self._aws.lock:
            known = self._variant_versions.get(endpoint)
        if known is not None:
            return known
        try:
            _, config = self.live(endpoint, "invoke")
            known = self.versions(endpoint, config)
        except EndpointKitError:
            known = {}  # tried once: invocations do not pay for a denied read every time
        with self._aws.lock:
            self._variant_versions[endpoint] = known
        return known

    def targeted(self, request: InvokeRequest) -> InvokeRequest:
        """`request` with its pinned version as the variant that serves it (TargetVariant)."""
        if not request.version:
            return request
        variants = {v: k for k, v in self._variant_map(request.endpoint).items()}
        variant = variants.get(request.version, request.version)
        return request if variant == request.version else replace(request, version=variant)

    def answered(self, endpoint: str, variant: str | None) -> str | None:
        """The version the answering variant (InvokedProductionVariant) serves."""
        if not variant:
            return variant
        return self._variant_map(endpoint).get(variant, variant)

    def state(self, name: str, desc: dict[str, Any], config: dict[str, Any]) -> EndpointState:
        """The EndpointState of a described endpoint and its live config."""
        raw_status = str(desc.get("EndpointStatus", ""))
        summaries = {
            v["VariantName"]: v
            for v in [
                *(desc.get("ProductionVariants") or []),
                *(desc.get("ShadowProductionVariants") or []),
            ]
        }
        names = self.versions(name, config)
        if config:
            with self._aws.lock:
                self._variant_versions[name] = names
        variant_weights = live_weights(desc, config)
        weights = {names[k]: w for k, w in variant_weights.items()}
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
            version = names[vname]
            versions.append(
                VersionState(
                    name=version,
                    spec_hash=hash_from_model_name(name, version, str(variant.get("ModelName"))),
                    status=vstatus,
                    replicas=int(replicas) if replicas is not None else None,
                    details={
                        "model": variant.get("ModelName"),
                        "variant": vname,
                        "instance_type": variant.get("InstanceType"),
                        "serverless": variant.get("ServerlessConfig"),
                        "weight": variant_weights.get(vname),
                        "shadow": variant in shadow_variants,
                    },
                )
            )
        traffic = TrafficSplit.from_weights(weights) if weights else TrafficSplit({})
        shadow = None
        if shadow_variants and config.get("ProductionVariants"):
            primary = float(config["ProductionVariants"][0].get("InitialVariantWeight") or 1.0)
            primary = variant_weights.get(config["ProductionVariants"][0]["VariantName"]) or primary
            sv = shadow_variants[0]
            summary = summaries.get(sv["VariantName"], {})
            sw = summary.get("CurrentWeight", sv.get("InitialVariantWeight", primary))
            percent = round(100 * float(sw) / primary) if primary else 100
            shadow = Shadow(
                version=names[sv["VariantName"]], sample_percent=min(100, max(1, percent))
            )
        failure = desc.get("FailureReason")
        region = self._aws.region
        details: dict[str, Any] = {
            "arn": desc.get("EndpointArn"),
            "endpoint_config": desc.get("EndpointConfigName"),
            "region": region,
        }
        if failure:
            details["log_hint"] = self._log_hint(name, desc)
        return EndpointState(
            name=name,
            backend=BACKEND,
            status=_STATUS.get(raw_status, Status.UPDATING),
            raw_status=raw_status,
            versions=versions,
            traffic=traffic,
            shadow=shadow,
            failure_reason=failure,
            created_at=desc.get("CreationTime"),
            updated_at=desc.get("LastModifiedTime"),
            url=f"https://runtime.sagemaker.{region}.amazonaws.com/endpoints/{name}/invocations",
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
        with self._aws.lock:
            cached = self._log_hints.get(key)
        if cached is not None:
            return cached
        hint = f"CloudWatch log group {group}" + (f", streams {variant}/*" if variant else "")
        if self._fetch_logs:
            hint = self._last_error(name, group, variant) or hint
        with self._aws.lock:
            self._log_hints[key] = hint
        return hint

    def _last_error(self, name: str, group: str, variant: str | None) -> str | None:
        kwargs: dict[str, Any] = {"logGroupName": group, "limit": 200}
        if variant:
            kwargs["logStreamNamePrefix"] = f"{variant}/"
        try:
            events = self._aws.call(
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


def live_weights(desc: dict[str, Any], config: dict[str, Any]) -> dict[str, float]:
    """Each production variant's weight now (current, else desired, else the config's)."""
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


def _json_error(message: str) -> str | None:
    """The `error` of a JSON log line (the endpointkit server's format), if it has one."""
    if not message.startswith("{"):
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])[:300]
    return None
