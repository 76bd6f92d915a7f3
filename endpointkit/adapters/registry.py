"""Backend names -> classes, resolved lazily so nothing is imported until it is used.

Built-in names map to "module:Class" strings (after fsspec's registry). Third-party backends
register through the `endpointkit.adapters` entry-point group or `register_backend`. Tests and
users' unit tests can route every backend name to one instance with `override_backends`.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from endpointkit.errors import MissingDependency, UnknownBackend, ValidationError

if TYPE_CHECKING:
    from endpointkit.adapters.base import Backend

__all__ = [
    "DEFAULT_BACKEND",
    "available_backends",
    "get_backend",
    "get_backend_class",
    "override_backends",
    "register_backend",
]

ENTRY_POINT_GROUP = "endpointkit.adapters"
DEFAULT_BACKEND = "local"

# name -> (target "module:Class", pip extra that provides its dependencies)
_KNOWN: dict[str, tuple[str, str | None]] = {
    "local": ("endpointkit.adapters.local:LocalBackend", "endpointkit[serve]"),
    "mock": ("endpointkit.adapters.mock:MockBackend", None),
    "sagemaker": ("endpointkit.adapters.sagemaker:SageMakerBackend", "endpointkit[sagemaker]"),
    "vertex": ("endpointkit.adapters.vertex.backend:VertexBackend", "endpointkit[vertex]"),
}
_registry: dict[str, tuple[str, str | None] | type[Backend]] = dict(_KNOWN)
_entry_points_loaded = False
_overrides: list[Backend] = []

#: Read-only view of what is registered (targets or classes).
registry = types.MappingProxyType(_registry)


def register_backend(
    name: str, target: str | type[Backend], *, extra: str | None = None, replace: bool = False
) -> None:
    """Register a backend class (or a lazy "module:Class" string) under `name`."""
    if name in _registry and not replace:
        raise ValidationError(
            f"a backend named {name!r} is already registered.",
            hint="Pass replace=True to override it.",
        )
    _registry[name] = target if not isinstance(target, str) else (target, extra)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in _registry:
            _registry[entry.name] = (entry.value, None)


def available_backends() -> list[str]:
    """Every backend name that can be asked for (built-in, registered, entry points)."""
    _load_entry_points()
    return sorted(_registry)


def get_backend_class(name: str) -> type[Backend]:
    """The class registered under `name`, importing it now.

    Raises UnknownBackend for an unknown name and MissingDependency, naming the pip extra,
    when the backend's SDK is not installed.
    """
    if name not in _registry:
        _load_entry_points()
    if name not in _registry:
        raise UnknownBackend(
            f"no backend named {name!r}.",
            hint=f"Available: {', '.join(available_backends())}.",
        )
    entry = _registry[name]
    if not isinstance(entry, tuple):
        return entry
    target, extra = entry
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if extra is None or (exc.name or "").startswith("endpointkit"):
            raise
        raise MissingDependency(
            f"the {name} backend needs packages that are not installed ({exc.name}).",
            hint=_hint(extra),
            backend=name,
        ) from exc
    cls: type[Backend] = getattr(module, attr)
    return cls


def get_backend(name: str | None = None, settings: Mapping[str, Any] | None = None) -> Backend:
    """A backend instance for `name` (default: local) built from `settings`.

    Inside `override_backends(instance)`, every name resolves to that instance instead.
    """
    if _overrides:
        return _overrides[-1]
    cls = get_backend_class(name or DEFAULT_BACKEND)
    try:
        return cls(**dict(settings or {}))
    except TypeError as exc:
        raise ValidationError(
            f"invalid settings for the {cls.name} backend: {exc}.",
            hint=f"See help({cls.__module__}.{cls.__name__}) for its settings.",
            backend=cls.name,
        ) from None


@contextmanager
def override_backends(backend: Backend) -> Iterator[Backend]:
    """Route every `get_backend` call to `backend` while the block runs (for unit tests)."""
    _overrides.append(backend)
    try:
        yield backend
    finally:
        _overrides.remove(backend)


def _hint(extra: str) -> str:
    """How to install a backend's requirement; endpointkit's own extras as installed here."""
    if extra.startswith("endpointkit[") and extra.endswith("]"):
        from endpointkit.extras import install_hint

        return install_hint(extra.removeprefix("endpointkit[").removesuffix("]"))
    return f"pip install '{extra}'"
