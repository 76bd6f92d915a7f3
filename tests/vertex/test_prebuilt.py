"""Prebuilt prediction containers on Vertex AI: `framework=` instead of an image.

UploadModel gets the URI from aiplatform's own helper (google-cloud-aiplatform, the vertex
extra) and leaves routes and port to Vertex AI's defaults, as those containers expect. The
fake runs endpointkit's server in place of Google's container (none can run here): it loads
model.joblib from artifactUri as the prebuilt scikit-learn container does. A directory with a
SageMaker inference script is refused before any call: those containers run no user code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from endpointkit.errors import SettingIgnoredWarning, ValidationError
from endpointkit.invocation import InvokeRequest
from endpointkit.spec import HealthCheck, VersionSpec
from tests.fakes.vertex import VertexFake
from tests.fakes.vertex_support import make_backend
from tests.toolkit_model import ROWS, toolkit_model


def framework_version(model: Path, version: str = "1.2-1") -> VersionSpec:
    return VersionSpec(name="v1", model=str(model), framework="sklearn", framework_version=version)


def test_upload_model_gets_the_prebuilt_uri_and_the_model_serves(
    fake: VertexFake, tmp_path: Path
) -> None:
    from google.cloud.aiplatform import helpers

    model = toolkit_model(tmp_path / "model")
    (model / "code" / "inference.py").unlink()  # the plain model file these containers load
    (model / "code").rmdir()
    backend = make_backend(fake, serving_image=None)  # no endpointkit image needed
    try:
        health = HealthCheck(startup_timeout_s=900, period_s=5)
        version = framework_version(model).model_copy(update={"health": health})
        with pytest.warns(SettingIgnoredWarning, match=r"period_s .*Vertex AI's own health"):
            backend.create("prebuilt", version)
        backend.wait("prebuilt", timeout=60)
        spec = fake.models["prebuilt"]["1"]["containerSpec"]
        # the startup budget still applies, as the deployment timeout; no probes on our route
        assert spec["deploymentTimeout"] == "900s"
        assert not {"startupProbe", "healthProbe"} & set(spec)
        expected = helpers.get_prebuilt_prediction_container_uri(
            "sklearn", "1.2", region=fake.location
        )
        assert spec["imageUri"] == expected
        assert expected.endswith("/vertex-ai/prediction/sklearn-cpu.1-2:latest")
        # Vertex AI's default routes and port: the prebuilt container serves those
        assert not {"predictRoute", "healthRoute", "ports", "invokeRoutePrefix"} & set(spec)

        body = json.dumps({"instances": ROWS}).encode()
        answer = backend.invoke(InvokeRequest("prebuilt", body)).json()
        import joblib

        expected_labels = joblib.load(model / "model.joblib").predict(np.array(ROWS))
        assert answer["predictions"] == expected_labels.tolist()
    finally:
        backend.delete("prebuilt")
        backend.wait_deleted("prebuilt", timeout=60)
        backend.close()


def test_a_model_with_a_toolkit_script_is_refused_before_any_call(
    fake: VertexFake, tmp_path: Path
) -> None:
    model = toolkit_model(tmp_path / "model")
    backend = make_backend(fake, serving_image=None)
    try:
        with pytest.raises(ValidationError) as caught:
            backend.create("scripted", framework_version(model))
        message = f"{caught.value} {caught.value.hint}"
        for named in ("code/inference.py", "runs no custom code", "serving_image", "'image'"):
            assert named in message
        assert fake.requests == []  # nothing was sent, not even a read
    finally:
        backend.close()


def test_a_version_vertex_has_no_container_for_is_refused_before_any_call(
    fake: VertexFake, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    backend = make_backend(fake, serving_image=None)
    try:
        with pytest.raises(ValidationError, match=r"no Vertex AI prebuilt container.*1\.3"):
            backend.create("old", framework_version(model, "0.1"))
        assert fake.requests == []
    finally:
        backend.close()


def test_a_dedicated_endpoint_refuses_a_prebuilt_container_and_leaves_nothing(
    fake: VertexFake, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.joblib").write_bytes(b"not read")
    backend = make_backend(fake, serving_image=None, dedicated_endpoint=True)
    try:
        with pytest.raises(ValidationError, match="Invoke API") as caught:
            backend.create("dedicated", framework_version(model))
        assert "dedicated_endpoint=False" in (caught.value.hint or "")
        assert "UploadModel" not in {rpc for _, _, rpc in fake.requests}
        assert not backend.exists("dedicated")
        assert not [o for o in fake.gcs_objects("endpointkit-staging") if "/dedicated/" in o]
    finally:
        backend.close()
