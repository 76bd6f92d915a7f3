"""The spec vocabulary: names, traffic, versions, files, hashes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from endpointkit.errors import ValidationError
from endpointkit.spec import (
    EndpointSpec,
    Resources,
    Scaling,
    TrafficSplit,
    VersionSpec,
    load_spec,
)


def spec(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "churn",
        "versions": [{"name": "v1", "model": "s3://bucket/v1.tar.gz"}],
    }
    data.update(overrides)
    return data


def test_single_version_gets_all_traffic_by_default() -> None:
    loaded = EndpointSpec.from_dict(spec())
    assert loaded.traffic_split.root == {"v1": 100}
    assert loaded.backend == "local"


_ASYNC = {"output_path": "s3://out/r"}


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"name": "Churn"}, "name", "lowercase"),
        ({"name": "churn_model"}, "name", "lowercase"),
        ({"name": "-churn"}, "name", "starting with a letter"),
        ({"name": "c" * 64}, "name", "1-63"),
        (
            {"versions": [{"name": "v1"}, {"name": "v2"}], "traffic": {"v1": 90, "v2": 20}},
            "traffic",
            "sums to 110",
        ),
        (
            {"versions": [{"name": "v1"}, {"name": "v2"}], "traffic": {"v1": 90, "v3": 10}},
            "traffic",
            "unknown version(s) v3",
        ),
        (
            {"versions": [{"name": "v1"}, {"name": "v2"}]},
            "traffic",
            "traffic is required",
        ),
        (
            {"versions": [{"name": "v1"}, {"name": "v1"}], "traffic": {"v1": 100}},
            "versions",
            "repeated: v1",
        ),
        ({"versions": [{"name": "V1"}]}, "versions[0].name", "lowercase"),
        ({"versions": [{"name": "default"}]}, "versions[0].name", "reserved by Vertex AI"),
        ({"versions": [{"name": "v"}]}, "versions[0].name", "not allowed"),
        ({"versions": [{"name": "v1", "env": {"AIP_HTTP_PORT": "1"}}]}, "versions[0].env", "AIP_"),
        ({"versions": [{"name": "v1", "model": "http://x/y"}]}, "versions[0].model", "s3://"),
        (
            {"versions": [{"name": "v1", "resources": {"instance_type": "m5.large"}}]},
            "versions[0].resources.instance_type",
            "ml.m5.large",
        ),
        (
            {"versions": [{"name": "v1", "resources": {"min_replicas": 3, "max_replicas": 2}}]},
            "versions[0].resources",
            "below min_replicas",
        ),
        ({"tags": {"Team": "a"}}, "tags", "Vertex AI label rules"),
        ({"tags": {"team": "A B"}}, "tags", "Vertex AI label rules"),
        ({"tags": {"managed-by": "me"}}, "tags", "reserved"),
        ({"shadow": {"version": "v9"}}, "shadow.version", "shadow version 'v9' is not declared"),
        ({"shadow": {"version": "v1"}}, "shadow.version", "must not also serve live traffic"),
        ({"versions": []}, "versions", "at least 1"),
        ({"colour": "blue"}, "colour", "Extra inputs"),
        (
            {
                "versions": [
                    {"name": "v1", "serverless": {}, "resources": {"instance_type": "ml.m5.large"}}
                ]
            },
            "versions[0]",
            "serverless",
        ),
        (
            {"versions": [{"name": "v1", "autoscaling": {"target_cpu_utilization": 50}}]},
            "versions[0]",
            "max_replicas",
        ),
        (
            {"versions": [{"name": "v1", "resources": {"min_replicas": 0}}]},
            "versions[0].resources.min_replicas",
            "only SageMaker asynchronous endpoints can scale to zero, and they do it with "
            "async_inference.scale_to_zero",
        ),
        (
            {"versions": [{"name": "v1", "async_inference": {**_ASYNC, "error_topic": "jobs"}}]},
            "versions[0].async_inference.error_topic",
            "error_topic 'jobs' is not an SNS topic ARN",
        ),
        (
            {"versions": [{"name": "v1", "async_inference": {**_ASYNC, "scale_to_zero": True}}]},
            "versions[0]",
            "scale_to_zero needs resources.max_replicas",
        ),
        (
            {
                "versions": [
                    {
                        "name": "v1",
                        "resources": {"max_replicas": 2},
                        "autoscaling": {"target_cpu_utilization": 50},
                        "async_inference": {**_ASYNC, "scale_to_zero": True},
                    }
                ]
            },
            "versions[0]",
            "remove autoscaling",
        ),
        (
            {
                "versions": [
                    {"name": "v1", "async_inference": {**_ASYNC, "target_backlog_per_replica": 3}}
                ]
            },
            "versions[0].async_inference",
            "only with scale_to_zero",
        ),
    ],
)
def test_invalid_specs_name_the_field(overrides: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EndpointSpec.from_dict(spec(**overrides), source="churn.yaml")
    message = str(caught.value)
    assert message.startswith("churn.yaml is invalid: ")
    assert f"{field}:" in message if field else True
    assert words in message


def test_eleven_versions_exceed_the_sagemaker_limit() -> None:
    versions = [{"name": f"v{i}"} for i in range(1, 12)]
    with pytest.raises(ValidationError, match="at most 10"):
        EndpointSpec.from_dict(spec(versions=versions, traffic={"v1": 100}))


def test_hash_ignores_name_and_default_spelling() -> None:
    plain = VersionSpec(name="v1", model="s3://b/m")
    explicit = VersionSpec(name="v2", model="s3://b/m", env={}, resources=Resources())
    changed = VersionSpec(name="v1", model="s3://b/m", env={"THREADS": "2"})
    assert plain.spec_hash == explicit.spec_hash
    assert plain.spec_hash != changed.spec_hash
    assert len(plain.spec_hash) == 12


def test_hash_is_stable_across_processes() -> None:
    # A changed hash would make every deployed version look modified: pin one value.
    assert VersionSpec(name="v1", model="s3://b/m").spec_hash == "ad48258f4de9"


def test_async_sections_keep_their_hashes_until_a_new_field_is_set() -> None:
    # Pinned on the code before success_topic / error_topic / scale_to_zero existed.
    section = {**_ASYNC, "failure_path": "s3://out/f", "max_concurrent_invocations_per_replica": 2}
    before = VersionSpec(name="v1", model="s3://b/m.tar.gz", async_inference=section)
    assert before.spec_hash == "6942021dc467"
    topic = "arn:aws:sns:us-east-1:123456789012:done"
    notified = VersionSpec(
        name="v1", model="s3://b/m.tar.gz", async_inference={**section, "success_topic": topic}
    )
    assert notified.spec_hash != before.spec_hash


def test_scaling_is_not_content() -> None:
    base = VersionSpec(name="v1", model="s3://b/m", resources=Resources(machine_type="n1"))
    scaled = VersionSpec.model_validate(
        {
            **base.model_dump(),
            "resources": {"machine_type": "n1", "min_replicas": 2, "max_replicas": 6},
            "autoscaling": {"target_cpu_utilization": 60},
        }
    )
    bigger = VersionSpec(name="v1", model="s3://b/m", resources=Resources(machine_type="n2"))
    assert scaled.spec_hash == base.spec_hash  # replicas change in place
    assert bigger.spec_hash != base.spec_hash  # a machine type does not
    assert base.scaling == Scaling(min_replicas=1, max_replicas=1)
    assert scaled.scaling is not None
    assert scaled.scaling.describe() == "2-6 replicas, autoscaling on cpu 60%"
    assert base.with_scaling(scaled.scaling) == scaled
    serverless = VersionSpec(name="v1", model="s3://b/m", serverless={"memory_mb": 2048})
    assert serverless.scaling is None


def test_scaling_rules_name_the_field() -> None:
    with pytest.raises(ValueError, match="max_replicas \\(1\\) is below min_replicas \\(3\\)"):
        Scaling(min_replicas=3, max_replicas=1)
    assert Scaling(min_replicas=3, max_replicas=3).describe() == "3 replicas"


def test_predictor_reference_goes_into_the_environment() -> None:
    version = VersionSpec(name="v1", predictor="pkg.mod:Model", env={"A": "1"})
    assert version.effective_env() == {"A": "1", "ENDPOINTKIT_PREDICTOR": "pkg.mod:Model"}
    with pytest.raises(ValueError, match=r"package\.module:ClassName"):
        VersionSpec(name="v1", predictor="pkg.mod.Model")


def test_specs_are_immutable() -> None:
    loaded = EndpointSpec.from_dict(spec())
    with pytest.raises(Exception, match="frozen"):
        loaded.name = "other"  # type: ignore[misc]


def test_load_yaml_resolves_model_paths_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "models" / "v1").mkdir(parents=True)
    path = tmp_path / "endpoint.yaml"
    path.write_text(
        "name: churn\nbackend: mock\nsettings: {seed: 3}\n"
        "versions:\n  - name: v1\n    model: models/v1\n  - name: v2\n    model: s3://b/v2\n"
        "traffic: {v1: 80, v2: 20}\ntags: {team: risk}\n"
    )
    loaded = load_spec(path)
    assert loaded.version("v1").model == str(tmp_path / "models" / "v1")
    assert loaded.version("v2").model == "s3://b/v2"
    assert loaded.settings == {"seed": 3}
    assert loaded.traffic_split.root == {"v1": 80, "v2": 20}


def test_load_json(tmp_path: Path) -> None:
    path = tmp_path / "endpoint.json"
    path.write_text(json.dumps(spec()))
    assert load_spec(path).name == "churn"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("name: [unclosed", "not valid"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("name: churn\nversions:\n  - name: v1\n    modle: x\n", "versions[0].modle: Extra inputs"),
    ],
)
def test_load_errors_name_the_file(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ValidationError) as caught:
        load_spec(path)
    assert str(path) in str(caught.value)
    assert words in str(caught.value)


def test_missing_file() -> None:
    with pytest.raises(ValidationError, match="cannot read spec file"):
        load_spec("/nonexistent/endpoint.yaml")


def test_version_lookup_names_the_choices() -> None:
    loaded = EndpointSpec.from_dict(spec())
    with pytest.raises(ValidationError, match="declared: v1"):
        loaded.version("v9")


def test_traffic_split_accepts_empty_and_rejects_out_of_range() -> None:
    assert TrafficSplit({}).serving() == {}
    with pytest.raises(ValueError, match="less than or equal to 100"):
        TrafficSplit({"v1": 101, "v2": -1})
