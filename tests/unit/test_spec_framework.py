"""VersionSpec.framework: a prebuilt framework container instead of an image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from endpointkit.errors import ValidationError
from endpointkit.spec import EndpointSpec, VersionSpec, load_spec


def endpoint(**version: Any) -> EndpointSpec:
    return EndpointSpec.from_dict(
        {"name": "churn", "versions": [{"name": "v1", "model": "s3://b/m.tar.gz", **version}]}
    )


def test_a_framework_version_validates_and_hashes_its_fields() -> None:
    first = endpoint(framework="sklearn", framework_version="1.2-1").version("v1")
    assert (first.framework, first.framework_version, first.py_version) == (
        "sklearn",
        "1.2-1",
        None,
    )
    other = endpoint(framework="sklearn", framework_version="1.0-1").version("v1")
    plain = endpoint().version("v1")
    assert len({first.spec_hash, other.spec_hash, plain.spec_hash}) == 3


@pytest.mark.parametrize(
    ("version", "field", "words"),
    [
        ({"framework": "tensorflow", "framework_version": "2.1"}, "framework", "'sklearn'"),
        ({"framework": "sklearn"}, "framework_version", "needs framework_version"),
        ({"framework_version": "1.2-1"}, "framework_version", "set framework"),
        ({"py_version": "py310"}, "py_version", "set framework"),
        (
            {"framework": "sklearn", "framework_version": "1.2-1", "image": "repo/img:1"},
            "framework",
            "both name the container",
        ),
        (
            {"framework": "sklearn", "framework_version": "1.2-1", "predictor": "m:C"},
            "predictor",
            "code/inference.py",
        ),
        ({"framework": "sklearn", "framework_version": "latest!"}, "framework_version", "1.2-1"),
        (
            {"framework": "pytorch", "framework_version": "2.1", "py_version": "3.10"},
            "py_version",
            "py310",
        ),
        (
            {"framework": "sklearn", "framework_version": "1.2-1", "model": None},
            "model",
            "set model",
        ),
    ],
)
def test_bad_framework_settings_name_the_field_and_the_fix(
    version: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        endpoint(**version)
    message = str(caught.value)
    assert f"versions[0].{field}" in message
    assert words in message


def test_spec_files_carry_the_framework(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    path = tmp_path / "endpoint.yaml"
    path.write_text(
        "name: churn\nversions:\n  - name: v1\n    model: ./model\n"
        "    framework: pytorch\n    framework_version: '2.1'\n    py_version: py310\n"
    )
    version = load_spec(path).version("v1")
    assert (version.framework, version.framework_version, version.py_version) == (
        "pytorch",
        "2.1",
        "py310",
    )
    assert VersionSpec.model_validate_json(version.model_dump_json()) == version
