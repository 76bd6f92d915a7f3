"""Shared test set-up: a clean environment for every test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clean_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No cloud credentials or endpointkit settings leak in from the developer's shell."""
    for key in list(os.environ):
        if key.startswith(("AWS_", "GOOGLE_", "CLOUDSDK_", "ENDPOINTKIT_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ENDPOINTKIT_HOME", str(tmp_path / "endpointkit-home"))
