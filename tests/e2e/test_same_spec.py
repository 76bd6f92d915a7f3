"""One spec, three backends: only `--backend` changes, and `endpointkit apply` deploys, splits,
serves and converges the same way on local, SageMaker (moto + fake) and Vertex AI (fake)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from endpointkit.cli import main
from tests.conformance.suite import Versions

pytestmark = pytest.mark.slow


@pytest.fixture(params=["local", "sagemaker", "vertex"])
def backend_settings(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, Any]]]:
    name = request.param
    if name == "local":
        from tests.local.harness import local_backend

        home = tmp_path / "home"
        with local_backend(home):  # stops the gateway and every version process afterwards
            yield name, {"home": str(home)}
    elif name == "sagemaker":
        from tests.fakes.sagemaker import shared_fake

        fake = shared_fake(request.config, tmp_path_factory.mktemp("fake-sagemaker"))
        yield name, {k: v for k, v in fake.settings().items() if not callable(v)}
    else:
        pytest.importorskip("google.cloud.aiplatform_v1", reason="needs endpointkit[vertex]")
        from tests.fakes.vertex import VertexFake
        from tests.fakes.vertex_support import backend_settings as vertex_settings

        with VertexFake(tmp_path / "vertex-fake", seed=9) as fake:
            yield name, vertex_settings(fake)
            assert not fake.live_processes()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = main([*argv, "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_the_same_spec_applies_on_every_backend(
    backend_settings: tuple[str, dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    backend, settings = backend_settings
    models = Versions(tmp_path / "models")
    spec = tmp_path / "churn.json"

    def write(traffic: dict[str, int]) -> None:
        spec.write_text(
            json.dumps(
                {
                    "name": "same-spec",
                    "backend": "mock",  # overridden by --backend: the rest of the spec is identical
                    "versions": [
                        models.echo(v).model_dump(exclude_none=True) for v in ("v1", "v2")
                    ],
                    "traffic": traffic,
                }
            )
        )

    flags = ["--backend", backend]
    for key, value in settings.items():
        flags += ["--set", f"{key}={value}"]
    waiting = [*flags, "--timeout", "120"]  # for the commands that wait for a change
    write({"v1": 80, "v2": 20})
    try:
        applied = run(capsys, "apply", str(spec), *waiting)
        assert applied["state"]["traffic"] == {"v1": 80, "v2": 20}
        assert run(capsys, "plan", str(spec), *flags)["changes"] == 0
        served = {
            run(capsys, "invoke", "same-spec", "--instances", "[[1.0]]", *flags)["version"]
            for _ in range(40)
        }
        assert served == {"v1", "v2"}
        write({"v1": 0, "v2": 100})
        shifted = run(capsys, "apply", str(spec), *waiting)
        assert [a["action"] for a in shifted["actions"]] == ["traffic"]
        answer = run(capsys, "invoke", "same-spec", "--instances", "[[1.0]]", *flags)
        assert answer["body"] == {"predictions": ["v2"]}
        assert run(capsys, "plan", str(spec), *flags)["changes"] == 0
    finally:
        destroyed = run(capsys, "destroy", str(spec), *waiting)
    assert destroyed["actions"][0]["action"] == "delete"
    assert "same-spec" not in [e["name"] for e in run(capsys, "list", *flags)]
