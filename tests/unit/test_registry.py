"""Backend registry: built-ins, registration, entry points, missing extras."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from endpointkit.adapters import registry
from endpointkit.adapters.mock import MockBackend
from endpointkit.errors import MissingDependency, UnknownBackend, ValidationError


@pytest.fixture
def clean_registry() -> Iterator[None]:
    saved = dict(registry._registry)
    yield
    registry._registry.clear()
    registry._registry.update(saved)


def test_builtin_names_resolve_lazily() -> None:
    assert set(registry.available_backends()) >= {"local", "mock", "sagemaker", "vertex"}
    assert registry.get_backend_class("mock") is MockBackend
    assert isinstance(registry.get_backend("mock", {"seed": 3}), MockBackend)


def test_unknown_backend_lists_the_choices() -> None:
    with pytest.raises(UnknownBackend, match=r"Available: .*mock"):
        registry.get_backend("nosuch")


def test_bad_settings_name_the_backend() -> None:
    with pytest.raises(ValidationError, match="invalid settings for the mock backend"):
        registry.get_backend("mock", {"colour": "blue"})


def test_register_refuses_to_clobber(clean_registry: None) -> None:
    registry.register_backend("custom", MockBackend)
    assert registry.get_backend_class("custom") is MockBackend
    with pytest.raises(ValidationError, match="already registered"):
        registry.register_backend("custom", MockBackend)
    registry.register_backend("custom", "endpointkit.adapters.mock:MockBackend", replace=True)
    assert registry.get_backend_class("custom") is MockBackend
    with pytest.raises(TypeError):
        registry.registry["x"] = MockBackend  # type: ignore[index]


def test_missing_sdk_names_the_extra(clean_registry: None) -> None:
    registry.register_backend(
        "needs-sdk", "not_installed_sdk_module:Backend", extra="endpointkit[imaginary]"
    )
    with pytest.raises(MissingDependency) as caught:
        registry.get_backend_class("needs-sdk")
    from endpointkit.extras import install_hint

    assert caught.value.hint == install_hint("imaginary")  # as installed here (a checkout)
    assert "[imaginary]" in str(caught.value)


def test_third_party_backends_come_from_entry_points(
    clean_registry: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A real installed distribution (a dist-info folder on sys.path) declaring the entry point.
    (tmp_path / "thirdparty_backend.py").write_text(
        "from endpointkit.adapters.mock import MockBackend as Backend\n"
    )
    dist = tmp_path / "thirdparty_backend-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: thirdparty-backend\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        "[endpointkit.adapters]\nthirdparty = thirdparty_backend:Backend\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    assert "thirdparty" in registry.available_backends()
    assert registry.get_backend_class("thirdparty") is MockBackend
