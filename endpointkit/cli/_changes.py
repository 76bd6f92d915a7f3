"""Commands that change a live endpoint: `deploy`, `rollout`, `traffic`, `promote`, `rollback`,
`undeploy`, `scale`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, Literal

from endpointkit.cli._codes import UsageProblem
from endpointkit.cli._inputs import endpoint_for, json_arg, pairs, version_from_args
from endpointkit.cli._output import (
    emit_state,
    output_format,
    print_json,
    render_state,
    show_progress,
    state_dict,
)


def _change(args: argparse.Namespace, run: Callable[[Any, dict[str, Any]], Any]) -> int:
    options = {"wait": not args.no_wait, "timeout": args.timeout, "progress": show_progress(args)}
    emit_state(args, run(endpoint_for(args), options))
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    version = version_from_args(args)
    return _change(args, lambda ep, o: ep.deploy(version, args.traffic, **o))


def cmd_rollout(args: argparse.Namespace) -> int:
    version = version_from_args(args)
    gates: dict[str, Any] = {}
    if args.probe:
        gates["probe"] = json_arg(args.probe, "--probe")
    if args.max_error_rate is not None:
        gates["max_error_rate"] = args.max_error_rate
    if args.max_p99_ms is not None:
        gates["max_p99_latency_ms"] = args.max_p99_ms
    if args.alarm:
        gates["alarms"] = args.alarm
    strategy: dict[str, Any] = {"gates": gates}
    if args.linear:
        strategy.update(type="linear", step_percent=args.linear, interval_s=args.bake)
    elif args.blue_green:
        strategy.update(type="blue_green", bake_s=args.bake)
    elif args.all_at_once:
        strategy.update(type="all_at_once", bake_s=args.bake)
    else:
        strategy.update(type="canary", percent=args.canary or 10, bake_s=args.bake)
    quiet = output_format(args) == "json"
    result = endpoint_for(args).rollout(
        version,
        strategy,
        timeout=args.timeout,
        native=args.native,
        on_step=None if quiet else (lambda text: print(f"rollout: {text}", file=sys.stderr)),
    )
    if quiet:
        print_json(
            {
                "version": result.version,
                "steps": result.steps,
                "probes": result.probes,
                "probe_errors": result.probe_errors,
                "state": state_dict(result.state) if result.state else None,
            }
        )
    elif result.state is not None:
        render_state(result.state)
    return 0


def cmd_traffic(args: argparse.Namespace) -> int:
    shares: dict[str, int] = {}
    for version, value in pairs(args.shares, "traffic share").items():
        try:
            shares[version] = int(value.rstrip("%"))
        except ValueError:
            raise UsageProblem(
                f"traffic for {version!r} must be an integer percent, got {value!r}"
            ) from None
    return _change(args, lambda ep, o: ep.set_traffic(shares, **o))


def cmd_promote(args: argparse.Namespace) -> int:
    return _change(args, lambda ep, o: ep.promote(args.version, **o))


def cmd_rollback(args: argparse.Namespace) -> int:
    return _change(args, lambda ep, o: ep.rollback(**o))


def cmd_undeploy(args: argparse.Namespace) -> int:
    return _change(args, lambda ep, o: ep.undeploy(args.version, **o))


def cmd_scale(args: argparse.Namespace) -> int:
    autoscaling: dict[str, int] | Literal[False] | None = None
    if args.no_autoscaling:
        autoscaling = False
    elif args.target_cpu is not None:
        autoscaling = {"target_cpu_utilization": args.target_cpu}
    elif args.target_invocations is not None:
        autoscaling = {"target_invocations_per_replica": args.target_invocations}
    if args.min_replicas is None and args.max_replicas is None and autoscaling is None:
        raise UsageProblem(
            "scale needs at least one of --min, --max, --target-cpu, --target-invocations or "
            "--no-autoscaling"
        )
    return _change(
        args,
        lambda ep, o: ep.scale(
            args.version,
            args.min_replicas,
            args.max_replicas,
            autoscaling=autoscaling,
            **o,
        ),
    )
