"""`export terraform` and `tf read|apply|destroy`: the commands Terraform configurations use."""

from __future__ import annotations

import argparse
import os
import sys

from endpointkit.cli._codes import UsageProblem
from endpointkit.cli._inputs import load_spec


def cmd_export(args: argparse.Namespace) -> int:
    import json

    from endpointkit.terraform import export_terraform

    spec = load_spec(args.spec)
    options = (
        {"managed_traffic": not args.no_managed_traffic} if spec.backend == "sagemaker" else {}
    )
    if spec.backend == "vertex" and args.spec:
        options = {"spec_path": os.path.abspath(args.spec)}
    text = json.dumps(export_terraform(spec, **options), indent=2) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_tf(args: argparse.Namespace) -> int:
    import json

    from endpointkit import terraform

    if args.action == "read":
        try:
            query = json.loads(sys.stdin.read() or "{}")
        except ValueError as exc:
            raise UsageProblem(f"stdin is not a JSON object: {exc}") from None
        if not isinstance(query, dict):
            raise UsageProblem("stdin must be a JSON object of strings")
        if args.backend and "backend" not in query:
            query["backend"] = args.backend
        print(json.dumps(terraform.read_query(query), sort_keys=True))
        return 0
    if args.action == "apply":
        state = terraform.apply_from_env(spec_arg=args.spec_file, timeout=args.timeout)
        if state is not None:
            print(
                f"endpoint {state.name}: {state.status}, traffic "
                f"{json.dumps(dict(state.traffic.root), sort_keys=True)}",
                file=sys.stderr,
            )
        return 0
    existed = terraform.destroy_from_env(name_arg=args.name, timeout=args.timeout)
    print("deleted" if existed else "nothing to delete", file=sys.stderr)
    return 0
