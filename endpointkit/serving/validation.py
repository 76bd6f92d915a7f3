"""Per-instance input checks declared by a predictor: a pydantic model, a JSON Schema, a shape.

A failing instance raises InvalidInput (422) naming the instance index and the field, before the
model runs. Predictors that declare nothing pay nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .errors import InvalidInput

Check = Callable[[Any], None]


def _loc(parts: Sequence[Any]) -> str:
    return ".".join(str(p) for p in parts) or "(root)"


def _pydantic_check(model: Any) -> Check:
    from pydantic import TypeAdapter, ValidationError

    adapter: TypeAdapter[Any] = TypeAdapter(model)

    def check(instance: Any, index: int) -> None:
        try:
            adapter.validate_python(instance)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InvalidInput(
                f"instance {index}: field '{_loc(err['loc'])}': {err['msg']}",
                code="schema_violation",
            ) from None

    return _per_instance(check)


def _jsonschema_check(schema: dict[str, Any]) -> Check:
    try:
        import jsonschema  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        from .predictor import MissingExtraError

        raise MissingExtraError(
            "A JSON Schema input_schema needs the jsonschema package: pip install jsonschema"
        ) from exc
    validator = jsonschema.validators.validator_for(schema)(schema)

    def check(instance: Any, index: int) -> None:
        err = jsonschema.exceptions.best_match(validator.iter_errors(instance))
        if err is not None:
            raise InvalidInput(
                f"instance {index}: field '{_loc(err.absolute_path)}': {err.message}",
                code="schema_violation",
            )

    return _per_instance(check)


def _shape_check(shape: tuple[int | None, ...]) -> Check:
    def walk(value: Any, dims: tuple[int | None, ...], index: int, path: list[int]) -> None:
        if not dims:
            if isinstance(value, (list, tuple)):
                raise InvalidInput(
                    f"instance {index}: field '{_loc(path)}': expected a scalar, got a list",
                    code="shape_mismatch",
                )
            return
        dim = dims[0]
        if not isinstance(value, (list, tuple)):
            raise InvalidInput(
                f"instance {index}: field '{_loc(path)}': expected a list of "
                f"{dim if dim is not None else 'any number of'} values per instance "
                f"(shape {list(shape)}), got {type(value).__name__}",
                code="shape_mismatch",
            )
        if dim is not None and len(value) != dim:
            raise InvalidInput(
                f"instance {index}: field '{_loc(path)}': expected {dim} values "
                f"(shape {list(shape)}), got {len(value)}",
                code="shape_mismatch",
            )
        for i, item in enumerate(value):
            walk(item, dims[1:], index, [*path, i])

    def check(instances: Any) -> None:
        arr_shape = getattr(instances, "shape", None)
        if arr_shape is not None:  # numpy input (npy, CSV, OIP tensors)
            got = tuple(arr_shape[1:])
            mismatch = any(d is not None and d != g for d, g in zip(shape, got, strict=False))
            if len(got) != len(shape) or mismatch:
                raise InvalidInput(
                    f"instance 0: expected instances of shape {list(shape)}, got {list(got)}",
                    code="shape_mismatch",
                )
            return
        if isinstance(instances, (list, tuple)):
            for index, instance in enumerate(instances):
                walk(instance, shape, index, [])

    return check


def _per_instance(check: Callable[[Any, int], None]) -> Check:
    def run(instances: Any) -> None:
        if isinstance(instances, (list, tuple)):
            for index, instance in enumerate(instances):
                check(instance, index)
        elif hasattr(instances, "tolist"):
            for index, instance in enumerate(instances.tolist()):
                check(instance, index)

    return run


def build_validator(predictor: Any) -> Check | None:
    """The input check for ``predictor``'s ``input_schema`` / ``input_shape``, or None."""
    checks: list[Check] = []
    schema = getattr(predictor, "input_schema", None)
    if isinstance(schema, dict):
        checks.append(_jsonschema_check(schema))
    elif schema is not None:
        checks.append(_pydantic_check(schema))
    shape = getattr(predictor, "input_shape", None)
    if shape is not None:
        checks.append(_shape_check(tuple(shape)))
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]

    def all_checks(instances: Any) -> None:
        for c in checks:
            c(instances)

    return all_checks
