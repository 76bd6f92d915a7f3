"""Users' predictors, unchanged, through the real server process (see tests/serving/conftest.py).

Every platform behaviour asserted here cites its source: the SageMaker inference toolkit
(aws/sagemaker-inference-toolkit v1.10.1, ``src/sagemaker_inference/...``), Vertex AI's Custom
Prediction Routines (google-cloud-aiplatform ``google/cloud/aiplatform/prediction/...``), or a
platform document.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.serving.conftest import Server, free_port, start_server

__all__ = ["Server", "free_port", "start_server", "write"]


def write(folder: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> dedented text) under ``folder``; return ``folder``."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return folder
