"""Which callable answers for a version: a function registered for it (on one endpoint or on
all), else the version's own predictor, loaded as the serving container loads it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import cast

from endpointkit.adapters.mock._wire import Handler
from endpointkit.errors import ValidationError
from endpointkit.spec import VersionSpec


class Handlers:
    """Registered handlers, by (endpoint or None for every endpoint, version name)."""

    def __init__(self, predictors: Mapping[str, Handler] | None) -> None:
        self._handlers: dict[tuple[str | None, str], Handler] = {
            (None, version): fn for version, fn in (predictors or {}).items()
        }

    def register(self, version: str, handler: Handler, endpoint: str | None) -> None:
        self._handlers[(endpoint, version)] = handler

    def resolve(self, name: str, version: VersionSpec) -> Handler:
        """The handler for `version` on endpoint `name`; raises if it has none or its model
        does not load."""
        for key in ((name, version.name), (None, version.name)):
            if key in self._handlers:
                return self._handlers[key]
        if version.predictor is None and version.model is None:
            raise ValidationError(
                f"no predictor for version {version.name!r}: register one with "
                "MockBackend.register(), or give the version a predictor or a model directory"
            )
        model_dir = _local_model_dir(version.model)
        from endpointkit.serving.predictor import load_predictor

        # the predictor itself (handlers may be objects with `predict`), so that its optional
        # predict_stream is found too
        predictor = load_predictor(
            model_dir, predictor=version.predictor, env=version.effective_env()
        )
        return cast(Handler, predictor)


def _local_model_dir(model: str | None) -> str | None:
    if model is None:
        return None
    if model.startswith("file://"):
        return model.removeprefix("file://")
    if "://" in model:
        raise ValidationError(
            f"the mock backend runs models from local directories only, not {model!r}: "
            "register a function for this version instead"
        )
    if not Path(model).exists():
        raise ValidationError(f"model directory {model!r} does not exist")
    return model
