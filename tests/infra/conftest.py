"""Real terraform, offline: the hashicorp/aws provider from the machine's filesystem mirror,
pointed at moto's server on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

MIRROR_CANDIDATES = (
    "/opt/tf-plugins",
    "/usr/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
)


def _require(what: str, found: object) -> None:
    if found:
        return
    message = f"{what} is not available on this machine"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the terraform tests (see DESIGN.md 'Tests')")
    pytest.skip(f"SKIPPED LOUDLY: {message}; the terraform tests did not run")


def find_mirror() -> Path | None:
    """The folder that holds registry.terraform.io/hashicorp/aws (ENDPOINTKIT_TF_MIRROR wins)."""
    for candidate in (os.environ.get("ENDPOINTKIT_TF_MIRROR"), *MIRROR_CANDIDATES):
        if candidate and (Path(candidate) / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return Path(candidate)
    return None


@dataclass
class Terraform:
    """Runs terraform in one working directory with the offline CLI configuration."""

    workdir: Path
    env: dict[str, str]

    def run(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["terraform", *args, "-no-color"],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            command = " ".join(args)
            raise AssertionError(
                f"terraform {command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def init(self) -> None:
        self.run("init", "-input=false")

    def apply(self, *extra: str) -> None:
        self.run("apply", "-input=false", "-auto-approve", *extra)

    def destroy(self, *extra: str) -> None:
        self.run("destroy", "-input=false", "-auto-approve", *extra)

    def plan_changes(self, *extra: str) -> tuple[bool, str]:
        """(whether the plan has changes, its text); -detailed-exitcode 2 means changes."""
        result = self.run("plan", "-input=false", "-detailed-exitcode", *extra, check=False)
        if result.returncode not in (0, 2):
            raise AssertionError(f"terraform plan failed:\n{result.stdout}\n{result.stderr}")
        return result.returncode == 2, result.stdout

    def output(self) -> dict[str, Any]:
        import json

        outputs = json.loads(self.run("output", "-json").stdout)
        return {key: value["value"] for key, value in outputs.items()}


@pytest.fixture(scope="session")
def terraform_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    _require("the terraform binary", shutil.which("terraform"))
    mirror = find_mirror()
    _require("the hashicorp/aws provider mirror (set ENDPOINTKIT_TF_MIRROR)", mirror)
    config = tmp_path_factory.mktemp("tf") / "offline.tfrc"
    config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n'
        '    include = ["registry.terraform.io/hashicorp/*"]\n  }\n'
        '  direct {\n    exclude = ["registry.terraform.io/hashicorp/*"]\n  }\n}\n'
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "TF_"))}
    env.update(
        TF_CLI_CONFIG_FILE=str(config),
        TF_IN_AUTOMATION="1",
        CHECKPOINT_DISABLE="1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


@pytest.fixture
def terraform(tmp_path: Path, terraform_env: dict[str, str]) -> Terraform:
    workdir = tmp_path / "tf"
    workdir.mkdir()
    return Terraform(workdir, dict(terraform_env))


def omit_empty_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto gap: DescribeEndpointConfig returns "DataCaptureConfig": {} and DescribeModel
    "VpcConfig": {} when none was set; real SageMaker omits them. The aws provider reads an
    empty block as a change that forces replacement, so every plan would show a diff. Omit
    empty blocks from those answers, as the service does."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.responses import SageMakerResponse

    def omit_empty(describe: Any) -> Any:
        def wrapper(self: SageMakerResponse) -> ActionResult:
            result = describe(self)
            body = {k: v for k, v in dict(result.result).items() if v not in ({}, [])}
            return ActionResult(body)

        return wrapper

    for name in ("describe_endpoint_config", "describe_model"):
        monkeypatch.setattr(SageMakerResponse, name, omit_empty(getattr(SageMakerResponse, name)))


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Plain moto (no gap fillers): enough for Terraform-only tests."""
    from moto.server import ThreadedMotoServer

    omit_empty_blocks(monkeypatch)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def fake_sagemaker(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """moto with its gaps filled and real serving processes (tests/fakes/sagemaker.py), for
    tests where Terraform and endpointkit act on the same endpoint."""
    from tests.fakes.sagemaker import shared_fake

    omit_empty_blocks(monkeypatch)
    return shared_fake(request.config, tmp_path_factory.mktemp("fake-sagemaker"))


def aws_provider(moto_url: str) -> dict[str, Any]:
    """A provider block (Terraform JSON) that talks to moto and skips every AWS-only check."""
    return {
        "provider": {
            "aws": {
                "region": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "skip_credentials_validation": True,
                "skip_requesting_account_id": True,
                "skip_metadata_api_check": True,
                "skip_region_validation": True,
                "endpoints": [
                    {
                        "sagemaker": moto_url,
                        "applicationautoscaling": moto_url,
                        "sts": moto_url,
                        "iam": moto_url,
                    }
                ],
            }
        }
    }


@pytest.fixture
def sagemaker_client(moto_url: str) -> Any:
    import boto3

    return boto3.client(
        "sagemaker",
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
