"""`plan`, `apply`, `destroy`: make an endpoint match a spec, or remove it."""

from __future__ import annotations

import argparse

from endpointkit.cli._codes import EXIT_CHANGES, UsageProblem
from endpointkit.cli._inputs import backend_for, load_spec
from endpointkit.cli._output import (
    output_format,
    print_json,
    render_state,
    show_progress,
    state_dict,
)


def cmd_plan(args: argparse.Namespace) -> int:
    from endpointkit.planner import plan

    spec = load_spec(args.spec)
    result = plan(spec, backend_for(args, spec))
    if output_format(args) == "json":
        print_json(result.to_dict())
    else:
        print(result.diff())
    return EXIT_CHANGES if (args.detailed_exitcode and result) else 0


def cmd_apply(args: argparse.Namespace) -> int:
    from endpointkit.planner import apply, plan

    spec = load_spec(args.spec)
    backend = backend_for(args, spec)
    text = output_format(args) == "text"
    result = apply(
        plan(spec, backend),
        backend,
        spec=spec,
        timeout=args.timeout,
        progress=show_progress(args),
        # what runs: after waiting out a change still running, apply plans again
        on_plan=(lambda ran: print(ran.diff(), flush=True)) if text else None,
    )
    if not text:
        print_json(
            {**result.plan.to_dict(), "state": state_dict(result.state) if result.state else None}
        )
    elif result.state is not None and result.plan:
        render_state(result.state)
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    from endpointkit.planner import destroy

    spec = load_spec(args.spec) if args.spec else None
    name = args.name or (spec.name if spec else None)
    if not name:
        raise UsageProblem("destroy needs a SPEC or --name NAME")
    result = destroy(name, backend_for(args, spec), timeout=args.timeout)
    if output_format(args) == "json":
        print_json(result.plan.to_dict())
    else:
        print(
            result.plan.diff()
            if result.plan
            else f"endpoint {name} does not exist: nothing to destroy."
        )
    return 0
