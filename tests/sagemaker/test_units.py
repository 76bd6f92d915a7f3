"""Pieces of the SageMaker backend that need no server: names, errors, archives, options."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from endpointkit.adapters.sagemaker import DeploymentConfig, SageMakerBackend
from endpointkit.adapters.sagemaker._artifacts import pack_model
from endpointkit.adapters.sagemaker._errors import aws_errors
from endpointkit.adapters.sagemaker._naming import (
    config_name,
    hash_from_model_name,
    model_name,
)
from endpointkit.errors import (
    AlreadyExists,
    Conflict,
    EndpointKitError,
    ModelError,
    NotFound,
    NotReady,
    PayloadTooLarge,
    PermissionDenied,
    QuotaExceeded,
    Throttled,
    Timeout,
    Unavailable,
    ValidationError,
)
from endpointkit.invocation import InvokeRequest

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")


def test_names_fit_sagemaker_rules_are_unique_and_carry_the_hash() -> None:
    long_endpoint = "e" * 63
    long_version = "v" * 63
    names = {
        model_name("churn", "v1", "0123456789ab"),
        model_name(long_endpoint, "v1", "0123456789ab"),
        model_name(long_endpoint, "v2", "0123456789ab"),
        model_name(long_endpoint, long_version, "0123456789ab"),
        model_name(long_endpoint[:-1] + "f", long_version, "0123456789ab"),
        config_name(long_endpoint, {"a": 1}),
        config_name(long_endpoint, {"a": 2}),
    }
    assert len(names) == 7
    for name in names:
        assert len(name) <= 63
        assert SAGEMAKER_NAME.match(name), name
    assert model_name("churn", "v1", "0123456789ab") == "churn-v1-0123456789ab"
    assert hash_from_model_name(long_endpoint, "v2", model_name(long_endpoint, "v2", "ab" * 6)) == (
        "ab" * 6
    )
    assert hash_from_model_name("churn", "v1", "someone-elses-model") is None
    assert config_name("churn", {"a": 1}) == config_name("churn", {"a": 1})


def client_error(code: str, message: str = "boom", status: int = 400, **extra: Any) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **extra,
    }
    return ClientError(response, "Op")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (client_error("ValidationException", 'Could not find endpoint "arn:x".'), NotFound),
        (
            client_error("ValidationException", "Cannot create already existing endpoint"),
            AlreadyExists,
        ),
        (client_error("ValidationException", 'Cannot update in-progress endpoint "arn"'), Conflict),
        (
            client_error("ValidationException", "Value 'x' at 'InstanceType' failed"),
            ValidationError,
        ),
        (client_error("ResourceLimitExceeded", "account-level service limit"), QuotaExceeded),
        (client_error("ResourceInUse", "in use"), Conflict),
        (client_error("ThrottlingException", "Rate exceeded"), Throttled),
        (client_error("AccessDeniedException", "nope", 403), PermissionDenied),
        (client_error("ModelNotReadyException", "warming up", 429), NotReady),
        (client_error("InternalFailure", "oops", 500), Unavailable),
        (client_error("ServiceUnavailable", "later", 503), Unavailable),
        (client_error("404", "Not Found", 404), NotFound),
        (client_error("ValidationError", "Endpoint x of account 1 not found."), NotFound),
        (EndpointConnectionError(endpoint_url="http://x"), Unavailable),
        (ReadTimeoutError(endpoint_url="http://x"), Timeout),
        (NoCredentialsError(), PermissionDenied),
    ],
)
def test_botocore_errors_map_to_endpointkit_errors(
    exc: Exception, expected: type[EndpointKitError]
) -> None:
    with (
        pytest.raises(expected) as caught,
        aws_errors("deploy", endpoint="churn", region="eu-west-1"),
    ):
        raise exc
    error = caught.value
    assert type(error) is expected
    assert error.backend == "sagemaker"
    assert error.operation == "deploy"
    assert error.endpoint == "churn"
    assert isinstance(error.__cause__, type(exc))


def test_model_error_keeps_original_status_message_and_log_stream() -> None:
    exc = client_error(
        "ModelError",
        "Received client error (400) from primary",
        424,
        OriginalStatusCode=400,
        OriginalMessage='{"error": "bad input"}',
        LogStreamArn="arn:aws:logs:eu-west-1:1:log-group:/aws/sagemaker/Endpoints/churn:x",
    )
    with pytest.raises(ModelError) as caught, aws_errors("invoke", endpoint="churn", version="v2"):
        raise exc
    error = caught.value
    assert error.status == 400
    assert error.body == b'{"error": "bad input"}'
    assert error.provider_code == "ModelError"
    assert "/aws/sagemaker/Endpoints/churn" in error.message
    assert "version 'v2'" in error.message


def test_model_archives_are_reproducible(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"\x00" * 10)
    (model / "sub" / "code.py").write_text("x = 1\n")
    first, digest = pack_model(model)
    (model / "weights.bin").touch()  # a new mtime changes nothing
    second, again = pack_model(model)
    assert (first, digest) == (second, again)
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["sub/code.py", "weights.bin"]


def test_deployment_config_maps_to_the_api_and_checks_limits() -> None:
    linear = DeploymentConfig(mode="linear", step_percent=20, wait_s=120, max_execution_s=3600)
    assert linear.to_api() == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 120,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 20},
            },
            "TerminationWaitInSeconds": 0,
            "MaximumExecutionTimeoutInSeconds": 3600,
        }
    }
    rolling = DeploymentConfig(mode="rolling", step_percent=25, wait_s=60, alarms=("a",))
    assert rolling.to_api()["RollingUpdatePolicy"]["MaximumBatchSize"]["Value"] == 25
    assert rolling.to_api()["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "a"}]}
    for bad in (
        {"mode": "canary", "step_percent": 60},
        {"mode": "rolling", "step_percent": 80},
        {"mode": "linear"},
        {"mode": "linear", "step_percent": 5},  # LinearStepSize: 10-50% (not in botocore)
        {"mode": "linear", "step_percent": 60},
        {"mode": "rolling", "step_percent": 25, "rollback_batch_percent": 0},
        {"alarms": ("",)},
        {"wait_s": 4000},
        {"max_execution_s": 10},
    ):
        with pytest.raises(ValidationError):
            DeploymentConfig.coerce(bad)


def test_payloads_over_6_mib_are_refused_before_sending() -> None:
    backend = SageMakerBackend(region="eu-west-1")
    with pytest.raises(PayloadTooLarge, match="6,291,456"):
        backend.invoke(InvokeRequest("churn", b"x" * (6 * 1024 * 1024 + 1)))


def test_settings_are_checked_when_the_backend_is_made() -> None:
    with pytest.raises(ValidationError, match="keep_configs"):
        SageMakerBackend(keep_configs=0)
    with pytest.raises(ValidationError, match="region"):
        _ = SageMakerBackend().region
