"""The install hint in MissingDependency works as written for this installation."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from endpointkit.adapters import registry
from endpointkit.errors import MissingDependency
from endpointkit.extras import install_hint

ROOT = Path(__file__).resolve().parents[2]


def test_from_a_checkout_the_hint_names_the_checkout() -> None:
    """`pip install -e .` then the local backend: the hint once said
    `pip install 'endpointkit[serve]'`, which the index cannot serve (issue 19.1)."""
    hint = install_hint("serve")
    assert hint == f"pip install -e '{ROOT}[serve]'"


def test_from_the_index_the_hint_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> metadata.Distribution:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", not_installed)
    assert install_hint("vertex") == "pip install 'endpointkit[vertex]'"


def test_a_missing_backend_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        registry._registry, "needs-extra", ("no_such_sdk_module:Backend", "endpointkit[serve]")
    )
    with pytest.raises(MissingDependency) as caught:
        registry.get_backend_class("needs-extra")
    assert caught.value.hint == install_hint("serve")
