"""Output shared by commands: text or JSON, endpoint states, and a closed pipe."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from endpointkit.state import EndpointState


def show_progress(args: argparse.Namespace) -> bool | None:
    """None: the default (a spinner when stderr is a terminal); never for JSON output."""
    return False if output_format(args) == "json" else None


def output_format(args: argparse.Namespace) -> str:
    return str(args.output or os.environ.get("ENDPOINTKIT_OUTPUT") or "text")


def print_json(data: Any) -> None:
    import json

    print(json.dumps(data, indent=2, default=str))


def state_dict(state: EndpointState) -> dict[str, Any]:
    data = state.model_dump(mode="json", exclude={"versions"})
    data["traffic"] = dict(state.traffic.root)
    data["versions"] = [
        v.model_dump(mode="json", exclude={"spec"}) | {"traffic": state.traffic[v.name]}
        for v in state.versions
    ]
    return data


def render_state(state: EndpointState) -> None:
    from rich.console import Console

    Console().print(state)


def emit_state(args: argparse.Namespace, state: EndpointState | None, note: str = "") -> None:
    if output_format(args) == "json":
        print_json(state_dict(state) if state else {"deleted": True, "message": note})
    elif state is not None:
        render_state(state)
    elif note:
        print(note)


def drop_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (tests): nothing will be flushed to a pipe
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
