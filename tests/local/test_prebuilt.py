"""A framework version (no image) runs locally in endpointkit's own server, from the same
model directory that SageMaker's framework container gets: code/inference.py included."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from endpointkit import Endpoint
from endpointkit.invocation import InvokeRequest
from endpointkit.spec import VersionSpec
from tests.toolkit_model import ROWS, in_process, toolkit_model


def test_the_toolkit_script_answers_as_it_does_in_process(
    make_endpoint: Callable[..., Endpoint], tmp_path: Path
) -> None:
    model = toolkit_model(tmp_path / "model")
    version = VersionSpec(
        name="v1", model=str(model), framework="sklearn", framework_version="1.2-1"
    )
    ep = make_endpoint(version)
    result = ep.backend.invoke(
        InvokeRequest(ep.name, json.dumps(ROWS).encode(), accept="application/json")
    )
    answer = result.json()
    assert answer == in_process(model)
    assert all(0 < p < 1 for p in answer)  # probabilities: the script ran, not a built-in
