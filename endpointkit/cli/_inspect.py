"""`status`, `list`, `history`: read an endpoint or the backend; change nothing."""

from __future__ import annotations

import argparse

from endpointkit.cli._inputs import backend_for, endpoint_for
from endpointkit.cli._output import emit_state, output_format, print_json, state_dict


def cmd_status(args: argparse.Namespace) -> int:
    emit_state(args, backend_for(args).get(args.name))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    states = backend_for(args).list_endpoints()
    if output_format(args) == "json":
        print_json([state_dict(s) for s in states])
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title_justify="left")
    for column in ("endpoint", "status", "traffic", "updated"):
        table.add_column(column)
    for state in states:
        traffic = ", ".join(f"{k}={v}%" for k, v in state.traffic.serving().items())
        updated = state.updated_at.isoformat(timespec="seconds") if state.updated_at else ""
        table.add_row(state.name, str(state.status), traffic or "-", updated)
    Console().print(table if states else "no endpoints")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    events = endpoint_for(args).history()
    if output_format(args) == "json":
        print_json([e.model_dump(mode="json") for e in events])
    else:
        print(events)  # a History: one line per event
    return 0
