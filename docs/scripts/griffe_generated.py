"""Griffe extension: document methods that endpointkit builds at import time as methods.

`Endpoint.predict`, `invoke` and `invoke_stream`, and every `AsyncEndpoint` method, are
assigned from factories (`predict = _invoking(...)`) that copy a docstring and a signature onto
the function they return. Read statically, those are attributes without docstrings and the
API pages would drop them; this extension asks the imported class for them instead.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import griffe


class GeneratedMethods(griffe.Extension):
    def on_class_members(self, *, node: Any, cls: griffe.Class, agent: Any, **kwargs: Any) -> None:
        if isinstance(agent, griffe.Inspector) or not cls.path.startswith("endpointkit."):
            return
        names = [
            name
            for name, member in cls.members.items()
            if not name.startswith("_")
            and not member.is_alias
            and member.is_attribute
            and member.docstring is None
        ]
        if not names:
            return
        runtime = getattr(importlib.import_module(cls.module.path), cls.name, None)
        generated = [n for n in names if inspect.isfunction(getattr(runtime, n, None))]
        if not generated:
            return
        parser = cls.docstring.parser if cls.docstring else None
        inspected = griffe.inspect(cls.module.path, docstring_parser=parser)[cls.name]
        for name in generated:
            method = inspected.members[name]
            if inspect.iscoroutinefunction(getattr(runtime, name)):
                method.labels.add("async")
            if method.docstring is not None and cls.docstring is not None:
                method.docstring.parser = cls.docstring.parser
                method.docstring.parser_options = cls.docstring.parser_options
            cls.set_member(name, method)
