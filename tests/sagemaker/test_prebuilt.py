"""Prebuilt framework containers on SageMaker: `framework=` instead of an image.

The image URI is the SageMaker Python SDK's own `image_uris.retrieve` answer (sagemaker-core,
the `prebuilt` extra); the model gets SAGEMAKER_PROGRAM / SAGEMAKER_SUBMIT_DIRECTORY so AWS's
scikit-learn container runs the directory's code/inference.py. The fake runs endpointkit's
server in place of AWS's container (no AWS image can run here), with the same environment.
"""

from __future__ import annotations

import importlib.abc
import io
import json
import sys
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import pytest

from endpointkit.adapters.sagemaker import SageMakerBackend
from endpointkit.errors import MissingDependency, ValidationError
from endpointkit.extras import install_hint
from endpointkit.invocation import InvokeRequest
from endpointkit.spec import Resources, VersionSpec
from tests.fakes.sagemaker import REGION, FakeSageMaker
from tests.toolkit_model import ROWS, in_process, toolkit_model

image_uris = pytest.importorskip(
    "sagemaker.core.image_uris", reason="pip install 'endpointkit[prebuilt]' (sagemaker-core)"
)


def sklearn_version(model: Path, **extra: object) -> VersionSpec:
    return VersionSpec(
        name="v1",
        model=str(model),
        framework="sklearn",
        framework_version="1.2-1",
        resources=Resources(instance_type="ml.m5.large"),
        **extra,  # type: ignore[arg-type]
    )


def test_create_model_gets_the_sdk_image_and_the_toolkit_environment(
    fake: FakeSageMaker, backend: SageMakerBackend, name: str, tmp_path: Path
) -> None:
    model = toolkit_model(tmp_path / "model")
    backend.create(name, sklearn_version(model))
    backend.wait(name, timeout=60)

    sm = fake.client("sagemaker")
    (summary,) = [m for m in sm.list_models()["Models"] if m["ModelName"].startswith(f"{name}-")]
    container = sm.describe_model(ModelName=summary["ModelName"])["PrimaryContainer"]
    expected = image_uris.retrieve(
        "sklearn",
        region=REGION,
        version="1.2-1",
        instance_type="ml.m5.large",
        image_scope="inference",
    )
    assert container["Image"] == expected
    assert container["Image"].endswith("/sagemaker-scikit-learn:1.2-1-cpu-py3")
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"

    # model.tar.gz as the framework containers expect it: the model at the top, code/ inside
    bucket, _, key = container["ModelDataUrl"].removeprefix("s3://").partition("/")
    body = fake.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        assert {"model.joblib", "code/inference.py"} <= set(tar.getnames())

    result = backend.invoke(
        InvokeRequest(name, json.dumps(ROWS).encode(), accept="application/json")
    )
    assert result.json() == pytest.approx(in_process(model))


def test_the_version_env_wins_over_the_framework_defaults(tmp_path: Path) -> None:
    from endpointkit.adapters.sagemaker.backend import container_environment

    model = toolkit_model(tmp_path / "model")
    env = container_environment(sklearn_version(model, env={"SAGEMAKER_PROGRAM": "serve.py"}))
    assert env["SAGEMAKER_PROGRAM"] == "serve.py"
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    (model / "code" / "inference.py").unlink()
    assert "SAGEMAKER_PROGRAM" not in container_environment(sklearn_version(model))


def test_an_unknown_framework_version_is_refused_before_any_call(
    fake: FakeSageMaker, backend: SageMakerBackend, name: str, tmp_path: Path
) -> None:
    model = toolkit_model(tmp_path / "model")
    version = sklearn_version(model).model_copy(update={"framework_version": "0.1-9"})
    with pytest.raises(ValidationError, match=r"1\.2-1") as caught:  # the SDK lists versions
        backend.create(name, version)
    assert "no prebuilt SageMaker image" in str(caught.value)
    assert not backend.exists(name)


class _NoSageMakerSdk(importlib.abc.MetaPathFinder):
    """Makes `sagemaker` (both SDKs) unimportable, as in an installation without the extra.
    Simulated: uninstalling a package mid-session would break the other tests."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        if fullname == "sagemaker" or fullname.startswith("sagemaker."):
            raise ImportError(f"No module named {fullname!r} (blocked by the test)")
        return None


@pytest.fixture
def no_sagemaker_sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for module in [m for m in sys.modules if m == "sagemaker" or m.startswith("sagemaker.")]:
        monkeypatch.delitem(sys.modules, module)
    blocker = _NoSageMakerSdk()
    sys.meta_path.insert(0, blocker)
    yield
    sys.meta_path.remove(blocker)


@pytest.mark.usefixtures("no_sagemaker_sdk")
@pytest.mark.parametrize("shorthand", [False, True], ids=["framework", "sagemaker-image"])
def test_without_the_sdk_the_error_names_the_extra_before_any_call(
    fake: FakeSageMaker, backend: SageMakerBackend, name: str, tmp_path: Path, shorthand: bool
) -> None:
    model = toolkit_model(tmp_path / "model")
    version = sklearn_version(model)
    if shorthand:  # the older spelling: an image reference the SDK resolves
        version = VersionSpec(name="v1", model=str(model), image="sagemaker:sklearn:1.2-1")
    with pytest.raises(MissingDependency) as caught:
        backend.create(name, version)
    assert "SageMaker Python SDK" in str(caught.value)
    assert install_hint("prebuilt") in str(caught.value)
    assert not backend.exists(name)
    models = fake.client("sagemaker").list_models()["Models"]
    assert not [m for m in models if m["ModelName"].startswith(f"{name}-")]
