"""From parsed arguments to API objects: KEY=VALUE pairs, specs, the backend, an Endpoint, a
version."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from endpointkit.cli._codes import UsageProblem

if TYPE_CHECKING:
    from endpointkit.adapters.base import Backend
    from endpointkit.spec import EndpointSpec


def pairs(items: Sequence[str], what: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageProblem(f"{what} {item!r} must look like KEY=VALUE")
        found[key.strip()] = value
    return found


def json_arg(text: str, flag: str) -> Any:
    """`text` parsed as JSON, or a UsageProblem that names `flag`."""
    import json

    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageProblem(f"{flag} is not valid JSON: {exc}") from None


def _coerce(value: str) -> Any:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def load_spec(path: str) -> EndpointSpec:
    from endpointkit.spec import load_spec as load

    return load(path)


def backend_for(args: argparse.Namespace, spec: EndpointSpec | None = None) -> Backend:
    from endpointkit.adapters.registry import get_backend

    if spec is None and getattr(args, "spec_file", None):
        spec = load_spec(args.spec_file)
    settings: dict[str, Any] = dict(spec.settings) if spec else {}
    settings.update({k: _coerce(v) for k, v in pairs(args.settings, "--set").items()})
    name = args.backend or (spec.backend if spec else None) or os.environ.get("ENDPOINTKIT_BACKEND")
    backend = get_backend(name, settings)
    # Inside override_backends (users' tests drive the CLI in-process) every lookup returns
    # the same instance, which does keep its endpoints; otherwise each command would get a
    # fresh, empty mock.
    if backend.name == "mock" and get_backend(name, settings) is not backend:
        raise UsageProblem(
            "the mock backend keeps its endpoints in the memory of one process, so CLI "
            "commands cannot share them; use --backend local (real serving processes on this "
            "machine, state in ./.endpointkit), or the mock from Python "
            "(endpointkit.testing.mock_endpoints)"
        )
    return backend


def endpoint_for(args: argparse.Namespace) -> Any:
    from endpointkit.endpoint import Endpoint

    return Endpoint(args.name, backend_for(args))  # backend_for reads --spec


def version_from_args(args: argparse.Namespace) -> Any:
    from endpointkit.spec import Resources, VersionSpec

    if args.from_spec:
        return load_spec(args.from_spec).version(args.version)
    if not (args.model or args.predictor or args.image or args.framework):
        raise UsageProblem(
            "deploy needs --from-spec FILE, or --model/--predictor/--image/--framework"
        )
    from pydantic import ValidationError as PydanticError

    try:
        return VersionSpec(
            name=args.version,
            model=args.model,
            image=args.image,
            predictor=args.predictor,
            framework=args.framework,
            framework_version=args.framework_version,
            py_version=args.py_version,
            env=pairs(args.env, "--env"),
            resources=Resources(instance_type=args.instance_type, machine_type=args.machine_type),
        )
    except PydanticError as exc:
        details = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'version'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False)
        )
        raise UsageProblem(f"invalid version: {details}") from None
