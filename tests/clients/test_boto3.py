"""boto3's `sagemaker-runtime` client against the local gateway, used as AWS's documentation
shows: only `endpoint_url` and the credentials differ from the cloud."""

from __future__ import annotations

import json
from collections.abc import Callable

import boto3
import pytest

from endpointkit import Endpoint
from endpointkit.adapters.local import LocalBackend
from tests.conformance.suite import Versions

pytestmark = pytest.mark.slow  # real processes and sockets


def test_invoke_json_csv_target_variant_and_stream(
    make_endpoint: Callable[..., Endpoint], versions: Versions, local: LocalBackend
) -> None:
    ep = make_endpoint(versions.echo("v1"), versions.echo("v2"), traffic={"v1": 100, "v2": 0})
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=local.gateway_url(),
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    answer = runtime.invoke_endpoint(
        EndpointName=ep.name,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps({"instances": [[5.1, 3.5], [6.2, 2.9]]}),
    )
    assert json.loads(answer["Body"].read()) == {"predictions": ["v1", "v1"]}
    assert answer["InvokedProductionVariant"] == "v1"
    csv = runtime.invoke_endpoint(
        EndpointName=ep.name, ContentType="text/csv", Accept="application/json", Body="5.1,3.5\n"
    )
    assert json.loads(csv["Body"].read()) == ["v1"]  # CSV rows in: a bare list out
    pinned = runtime.invoke_endpoint(
        EndpointName=ep.name, TargetVariant="v2", ContentType="application/json", Body=b"[[1.0]]"
    )
    assert pinned["InvokedProductionVariant"] == "v2"
    stream = runtime.invoke_endpoint_with_response_stream(
        EndpointName=ep.name,
        ContentType="application/json",
        Accept="application/jsonlines",
        Body=json.dumps({"instances": [1, 2, 3]}),
    )
    data = b"".join(event["PayloadPart"]["Bytes"] for event in stream["Body"])
    lines = [json.loads(line) for line in data.splitlines() if line.strip()]
    assert [line["index"] for line in lines] == [0, 1, 2]
