"""A version's health check: validation, hashing and what each backend maps it to."""

from __future__ import annotations

from typing import Any

import pytest

from endpointkit.errors import ValidationError
from endpointkit.spec import EndpointSpec, HealthCheck, Serverless, VersionSpec


def spec_with(health: dict[str, Any]) -> EndpointSpec:
    return EndpointSpec.from_dict(
        {"name": "churn", "versions": [{"name": "v1", "health": health}]}, source="churn.yaml"
    )


@pytest.mark.parametrize(
    ("health", "field", "words"),
    [
        ({"startup_timeout_s": 59}, "startup_timeout_s", "must be 60-3600 seconds, got 59"),
        ({"startup_timeout_s": 3601}, "startup_timeout_s", "SageMaker accepts 60-3600"),
        ({"period_s": 0}, "period_s", "period_s must be 1-300 seconds, got 0"),
        ({"timeout_s": 301}, "timeout_s", "timeout_s must be 1-300 seconds"),
        ({"failure_threshold": 0}, "failure_threshold", "failure_threshold must be 1-100, got 0"),
        ({"startup_timeout_s": 60.5}, "startup_timeout_s", "integer"),
        ({"startup": 60}, "startup", "Extra inputs are not permitted"),
    ],
)
def test_invalid_health_names_the_field(health: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        spec_with(health)
    message = str(caught.value)
    assert f"versions[0].health.{field}:" in message
    assert words in message


def test_valid_health_keeps_every_field() -> None:
    health = {"startup_timeout_s": 900, "period_s": 5, "timeout_s": 2, "failure_threshold": 3}
    version = spec_with(health).versions[0]
    assert version.health == HealthCheck(**health)
    assert VersionSpec.model_validate_json(version.model_dump_json()) == version


def test_omitted_or_empty_health_hashes_like_before() -> None:
    plain = VersionSpec(name="v1", model="s3://b/m")
    assert "health" not in plain.model_dump(exclude_none=True)
    assert VersionSpec(name="v1", model="s3://b/m", health=None).spec_hash == plain.spec_hash
    assert VersionSpec(name="v2", model="s3://b/m", health={}).spec_hash == plain.spec_hash
    explicit_none = HealthCheck(startup_timeout_s=None, period_s=None)
    assert VersionSpec(name="v1", model="s3://b/m", health=explicit_none).spec_hash == (
        plain.spec_hash
    )


def test_each_health_field_changes_the_hash() -> None:
    plain = VersionSpec(name="v1", model="s3://b/m").spec_hash
    hashes = {
        VersionSpec(name="v1", model="s3://b/m", health={key: value}).spec_hash
        for key, value in {
            "startup_timeout_s": 600,
            "period_s": 5,
            "timeout_s": 2,
            "failure_threshold": 3,
        }.items()
    }
    assert len(hashes) == 4
    assert plain not in hashes


# -- SageMaker: the ProductionVariant -------------------------------------------------------------


def test_sagemaker_variant_carries_both_startup_timeouts() -> None:
    from endpointkit.adapters.sagemaker.backend import production_variant

    version = VersionSpec(
        name="v1", health={"startup_timeout_s": 900, "period_s": 5, "failure_threshold": 3}
    )
    variant = production_variant(version, "m", 1.0)
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 900
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 900
    # No liveness knob exists on SageMaker: period and threshold go nowhere, without error.
    assert not {k for k in variant if "Period" in k or "Threshold" in k}
    untouched = production_variant(VersionSpec(name="v1", health={"period_s": 5}), "m", 1.0)
    assert "ContainerStartupHealthCheckTimeoutInSeconds" not in untouched
    assert "ModelDataDownloadTimeoutInSeconds" not in untouched


def test_sagemaker_serverless_variant_takes_no_startup_timeouts() -> None:
    from endpointkit.adapters.sagemaker.backend import production_variant

    version = VersionSpec(name="v1", serverless=Serverless(), health={"startup_timeout_s": 120})
    variant = production_variant(version, "m", 1.0)
    assert "ServerlessConfig" in variant
    assert "ContainerStartupHealthCheckTimeoutInSeconds" not in variant
    assert "ModelDataDownloadTimeoutInSeconds" not in variant


def test_terraform_export_carries_the_startup_timeouts() -> None:
    from endpointkit.terraform import export_terraform

    spec = EndpointSpec.from_dict(
        {
            "name": "churn",
            "backend": "sagemaker",
            "versions": [
                {
                    "name": "v1",
                    "model": "s3://models/churn/v1.tar.gz",
                    "health": {"startup_timeout_s": 1200, "period_s": 5},
                },
                {"name": "v2", "model": "s3://models/churn/v2.tar.gz"},
            ],
            "traffic": {"v1": 100},
        }
    )
    doc = export_terraform(spec)
    config = doc["resource"]["aws_sagemaker_endpoint_configuration"]["churn"]
    variants = {v["variant_name"]: v for v in config["production_variants"]}
    assert variants["v1"]["container_startup_health_check_timeout_in_seconds"] == 1200
    assert variants["v1"]["model_data_download_timeout_in_seconds"] == 1200
    assert "container_startup_health_check_timeout_in_seconds" not in variants["v2"]


def test_vertex_export_keeps_the_health_check_in_the_spec() -> None:
    import json

    from endpointkit.terraform import export_terraform

    spec = EndpointSpec.from_dict(
        {
            "name": "churn",
            "backend": "vertex",
            "versions": [{"name": "v1", "health": {"startup_timeout_s": 600}}],
        }
    )
    deploy = export_terraform(spec)["resource"]["terraform_data"]["churn_deploy"]
    sent = json.loads(deploy["triggers_replace"]["spec"])
    assert sent["versions"][0]["health"] == {"startup_timeout_s": 600}


# -- Vertex AI: probes and deployment timeout ------------------------------------------------------


def test_vertex_startup_budget_becomes_probe_and_deployment_timeout() -> None:
    from endpointkit.adapters.vertex import container_health

    version = VersionSpec(
        name="v1",
        health={"startup_timeout_s": 95, "period_s": 7, "timeout_s": 3, "failure_threshold": 4},
    )
    startup, health, deadline = container_health(version, {}, {}, None)
    assert startup == {"period_seconds": 10, "failure_threshold": 10}  # 10 x 10 s >= 95 s
    assert health == {"period_seconds": 7, "timeout_seconds": 3, "failure_threshold": 4}
    assert deadline == 95


def test_vertex_version_health_overrides_backend_settings_field_by_field() -> None:
    from endpointkit.adapters.vertex import container_health

    settings_startup = {"period_seconds": 5, "failure_threshold": 120, "initial_delay_seconds": 20}
    settings_health = {"period_seconds": 10, "timeout_seconds": 2, "success_threshold": 2}
    version = VersionSpec(name="v1", health={"startup_timeout_s": 120, "timeout_s": 5})
    startup, health, deadline = container_health(version, settings_startup, settings_health, 3600)
    # 20 s initial delay + 10 x 10 s covers the 120 s budget.
    assert startup == {"period_seconds": 10, "failure_threshold": 10, "initial_delay_seconds": 20}
    assert health == {"period_seconds": 10, "timeout_seconds": 5, "success_threshold": 2}
    assert deadline == 3600  # the budget raises the deployment timeout, never shortens it
    # Without a version health check, the settings stay as they are (and are not mutated).
    same = container_health(VersionSpec(name="v1"), settings_startup, settings_health, 3600)
    assert same == (settings_startup, settings_health, 3600)
    assert settings_startup["failure_threshold"] == 120


def test_vertex_initial_delay_past_the_budget_is_dropped() -> None:
    from endpointkit.adapters.vertex import container_health

    version = VersionSpec(name="v1", health={"startup_timeout_s": 60})
    startup, _, _ = container_health(version, {"initial_delay_seconds": 90}, {}, None)
    assert startup == {"period_seconds": 10, "failure_threshold": 6}


# -- local: the supervisor's timings ---------------------------------------------------------------


def test_local_supervisor_takes_its_timings_from_the_version(tmp_path: Any) -> None:
    from endpointkit.adapters.local.supervisor import PING_TIMEOUT_S, VersionProcess

    async def nothing(*_: Any) -> None:
        return None

    def process(version: VersionSpec) -> VersionProcess:
        return VersionProcess(
            endpoint="ep",
            spec=version,
            upstream=None,  # type: ignore[arg-type]
            store=None,  # type: ignore[arg-type]
            home=tmp_path,
            python="python",
            start_timeout=30.0,
            health_interval=1.0,
            on_ready=nothing,
            on_failed=nothing,
            time_scale=0.5,
        )

    plain = process(VersionSpec(name="v1"))
    assert (plain.start_timeout, plain.health_interval, plain.check_timeout) == (
        30.0,
        1.0,
        PING_TIMEOUT_S,
    )
    assert plain.restart_after is None
    checked = process(
        VersionSpec(
            name="v1",
            health={"startup_timeout_s": 60, "period_s": 4, "timeout_s": 2, "failure_threshold": 3},
        )
    )
    assert (checked.start_timeout, checked.health_interval, checked.check_timeout) == (
        30.0,
        2.0,
        1.0,
    )
    assert checked.restart_after == 3
