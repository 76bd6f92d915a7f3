"""`endpointkit ...`: parse arguments, call the public API, render the result.

Thin on purpose: every command maps to one API call. Only argparse is imported at start so
`endpointkit --help` stays fast; the API and rich load when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from endpointkit.adapters.base import Backend
    from endpointkit.spec import EndpointSpec, EndpointState

EXIT_CODES = """\
exit codes:
  0   success
  1   the backend reported an error (see the message)
  2   invalid input: bad spec, flag or argument
  3   endpoint or version not found
  4   a deployment failed or was rolled back
  5   timed out waiting
  6   throttled or temporarily unavailable: retry later
  7   the model answered with an error (invoke)
  10  plan --detailed-exitcode: the plan has changes
"""

EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_DEPLOY, EXIT_TIMEOUT, EXIT_RETRY, EXIT_MODEL = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
)
EXIT_CHANGES = 10


class UsageProblem(Exception):
    """A command-line mistake detected after parsing (bad KEY=VALUE, missing file...)."""


# -- argument parsing ---------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("backend and output")
    group.add_argument(
        "--backend",
        help="local (default), mock, sagemaker, vertex or a plugin; env ENDPOINTKIT_BACKEND; "
        "a SPEC's own backend is used when not given",
    )
    group.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend setting, e.g. --set region=eu-west-1 (repeatable)",
    )
    group.add_argument("--spec", dest="spec_file", help="take backend and settings from a spec")
    group.add_argument(
        "--output",
        "-o",
        choices=("text", "json"),
        default=None,
        help="output format; env ENDPOINTKIT_OUTPUT (default: text)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds to wait for a change to finish (default 1800)",
    )
    group.add_argument("--no-wait", action="store_true", help="return once a change is started")
    group.add_argument("--debug", action="store_true", help="show tracebacks")
    return common


def _version_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from-spec", help="take the version's definition from this spec file")
    p.add_argument("--model", help="model artifact: local dir, file://, s3:// or gs:// URI")
    p.add_argument("--image", help="serving image (default: the endpointkit image)")
    p.add_argument("--predictor", help="module:Class that serves the model")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment variable for the version (repeatable)",
    )
    p.add_argument("--instance-type", help="SageMaker instance type, e.g. ml.m5.large")
    p.add_argument("--machine-type", help="Vertex AI machine type, e.g. n1-standard-4")


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="endpointkit",
        description="Create, version, split traffic and invoke ML model endpoints on "
        "SageMaker, Vertex AI or this machine.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="endpointkit 0.1.0")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common],
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = add("plan", "Show what apply would change to make the endpoint match SPEC.")
    p.add_argument("spec", metavar="SPEC", help="endpoint spec (.yaml or .json)")
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help=f"exit {EXIT_CHANGES} when there are changes, 0 when none",
    )
    p = add("apply", "Make the endpoint match SPEC (idempotent; prints the plan it runs).")
    p.add_argument("spec", metavar="SPEC")
    p = add("destroy", "Delete the endpoint of SPEC (or --name) and all its versions.")
    p.add_argument("spec", metavar="SPEC", nargs="?")
    p.add_argument("--name", help="endpoint name, instead of a SPEC")
    p = add("status", "Show an endpoint: status, versions, traffic, shadow.")
    p.add_argument("name", metavar="NAME")
    add("list", "List the endpoints endpointkit manages on the backend.")
    p = add("deploy", "Add an immutable version to an endpoint.")
    p.add_argument("name", metavar="NAME", help="endpoint name")
    p.add_argument("version", metavar="VERSION", help="version name, e.g. v2")
    p.add_argument("--traffic", type=int, default=0, help="percent of traffic (default 0)")
    _version_flags(p)
    p = add("rollout", "Deploy a version and shift traffic to it progressively, with gates.")
    p.add_argument("name", metavar="NAME", help="endpoint name")
    p.add_argument("version", metavar="VERSION", help="version name, e.g. v2")
    _version_flags(p)
    how = p.add_mutually_exclusive_group()
    how.add_argument("--canary", type=int, metavar="PERCENT", help="canary share (default 10)")
    how.add_argument("--linear", type=int, metavar="STEP", help="shift STEP%% at a time")
    how.add_argument("--blue-green", action="store_true", help="all at once, then drop old")
    how.add_argument("--all-at-once", action="store_true")
    p.add_argument("--bake", type=float, default=300.0, help="seconds to watch each step")
    p.add_argument("--probe", help="JSON list of instances sent to the new version as a gate")
    p.add_argument("--max-error-rate", type=float, help="gate: e.g. 0.01 for 1%% of probes")
    p.add_argument("--max-p99-ms", type=float, help="gate: p99 latency of the probes")
    p.add_argument(
        "--alarm",
        action="append",
        default=[],
        metavar="NAME",
        help="gate: a CloudWatch alarm that must stay OK (repeatable; SageMaker)",
    )
    p = add("traffic", "Set the traffic split, e.g. 'traffic churn v1=90 v2=10'.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("shares", metavar="VERSION=PERCENT", nargs="+")
    p = add("promote", "Send all traffic to VERSION (others stay deployed).")
    p.add_argument("name", metavar="NAME")
    p.add_argument("version", metavar="VERSION")
    p = add("rollback", "Restore the traffic split in force before the latest change.")
    p.add_argument("name", metavar="NAME")
    p = add("undeploy", "Remove a version; its traffic moves to the others first.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("version", metavar="VERSION")
    p = add(
        "scale",
        "Change a live version's replicas in place, e.g. 'scale churn v2 --min 2 --max 6 "
        "--target-cpu 60'. What is not given is kept.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("--min", dest="min_replicas", type=int, help="minimum replicas")
    p.add_argument("--max", dest="max_replicas", type=int, help="maximum replicas")
    auto = p.add_mutually_exclusive_group()
    auto.add_argument("--target-cpu", type=int, metavar="PERCENT", help="autoscale on CPU")
    auto.add_argument(
        "--target-invocations",
        type=int,
        metavar="N",
        help="autoscale on invocations per replica (per minute)",
    )
    auto.add_argument("--no-autoscaling", action="store_true", help="turn autoscaling off")
    p = add("invoke", "Send a request to an endpoint and print the answer.")
    p.add_argument("name", metavar="NAME")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--instances", help='JSON list; sent as {"instances": [...]}')
    source.add_argument("--data", help="request body as text")
    source.add_argument("--file", help="request body from a file ('-' for stdin)")
    p.add_argument("--content-type", default="application/json")
    p.add_argument("--accept", default=None)
    p.add_argument("--target-version", dest="target_version", help="pin one version")
    p.add_argument("--custom-attributes", help="passed to the model (SageMaker semantics)")
    p.add_argument(
        "--stream",
        action="store_true",
        help="stream the answer, printing chunks as they arrive (Accept defaults to "
        "text/event-stream)",
    )
    p = add("export", "Export a spec for other tools: 'export terraform SPEC'.")
    p.add_argument("format", choices=("terraform",), help="what to export to")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--out", default="-", help="file to write (default: stdout)")
    p.add_argument(
        "--no-managed-traffic",
        action="store_true",
        help="let Terraform own weights (default: endpointkit manages traffic)",
    )
    p = add(
        "tf",
        "Commands for Terraform: 'tf read' (external data source), 'tf apply' and "
        "'tf destroy' (local-exec / terraform_data). Inputs from env and flags.",
    )
    p.add_argument("action", choices=("read", "apply", "destroy"))
    p.add_argument("--name", help="endpoint name (tf destroy; env ENDPOINTKIT_ENDPOINT)")
    p = add("history", "Show an endpoint's events, oldest first.")
    p.add_argument("name", metavar="NAME")
    serve = commands.add_parser(
        "serve",
        help="Run the serving server (same as the container's 'serve').",
        add_help=False,
    )
    serve.add_argument("serve_args", nargs=argparse.REMAINDER)
    local = commands.add_parser(
        "local",
        help="Manage the local backend's gateway: 'local status', 'local stop'.",
        add_help=False,
    )
    local.add_argument("local_args", nargs=argparse.REMAINDER)
    return parser


# -- helpers -----------------------------------------------------------------------------------


def _pairs(items: Sequence[str], what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageProblem(f"{what} {item!r} must look like KEY=VALUE")
        pairs[key.strip()] = value
    return pairs


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


def _load_spec(path: str) -> EndpointSpec:
    from endpointkit.spec import load_spec

    return load_spec(path)


def _backend(args: argparse.Namespace, spec: EndpointSpec | None = None) -> Backend:
    from endpointkit.adapters.registry import get_backend

    if spec is None and getattr(args, "spec_file", None):
        spec = _load_spec(args.spec_file)
    settings: dict[str, Any] = dict(spec.settings) if spec else {}
    settings.update({k: _coerce(v) for k, v in _pairs(args.settings, "--set").items()})
    name = args.backend or (spec.backend if spec else None) or os.environ.get("ENDPOINTKIT_BACKEND")
    return get_backend(name, settings)


def _progress(args: argparse.Namespace) -> bool:
    return _output(args) == "text" and sys.stderr.isatty()


def _output(args: argparse.Namespace) -> str:
    return str(args.output or os.environ.get("ENDPOINTKIT_OUTPUT") or "text")


def _print_json(data: Any) -> None:
    import json

    print(json.dumps(data, indent=2, default=str))


def _state_dict(state: EndpointState) -> dict[str, Any]:
    data = state.model_dump(mode="json", exclude={"versions"})
    data["traffic"] = dict(state.traffic.root)
    data["versions"] = [
        v.model_dump(mode="json", exclude={"spec"}) | {"traffic": state.traffic[v.name]}
        for v in state.versions
    ]
    return data


def _render_state(state: EndpointState) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    title = f"{state.name} on {state.backend}: {state.status}"
    table = Table(title=title, title_justify="left")
    for column in ("version", "traffic", "hash", "status", "replicas"):
        table.add_column(column, justify="right" if column in ("traffic", "replicas") else "left")
    for version in state.versions:
        name = version.name
        if state.shadow and state.shadow.version == name:
            name += f" (shadow {state.shadow.sample_percent}%)"
        table.add_row(
            name,
            f"{state.traffic[version.name]}%",
            version.spec_hash or "",
            str(version.status),
            version.scaling.describe()
            if version.scaling is not None
            else ("" if version.replicas is None else str(version.replicas)),
        )
    console.print(table)
    if state.failure_reason:
        console.print(f"[yellow]last failure:[/yellow] {state.failure_reason}")
    if state.url:
        console.print(f"url: {state.url}")


def _emit_state(args: argparse.Namespace, state: EndpointState | None, note: str = "") -> None:
    if _output(args) == "json":
        _print_json(_state_dict(state) if state else {"deleted": True, "message": note})
    elif state is not None:
        _render_state(state)
    elif note:
        print(note)


# -- commands ----------------------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace) -> int:
    from endpointkit.planner import plan

    spec = _load_spec(args.spec)
    result = plan(spec, _backend(args, spec))
    if _output(args) == "json":
        _print_json(result.to_dict())
    else:
        print(result.diff())
    return EXIT_CHANGES if (args.detailed_exitcode and result) else 0


def cmd_apply(args: argparse.Namespace) -> int:
    from endpointkit.planner import apply, plan

    spec = _load_spec(args.spec)
    backend = _backend(args, spec)
    the_plan = plan(spec, backend)
    if _output(args) == "text":
        print(the_plan.diff())
    result = apply(the_plan, backend, spec=spec, timeout=args.timeout, progress=_progress(args))
    if _output(args) == "json":
        _print_json(
            {**the_plan.to_dict(), "state": _state_dict(result.state) if result.state else None}
        )
    elif result.state is not None and the_plan:
        _render_state(result.state)
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    from endpointkit.planner import destroy

    spec = _load_spec(args.spec) if args.spec else None
    name = args.name or (spec.name if spec else None)
    if not name:
        raise UsageProblem("destroy needs a SPEC or --name NAME")
    result = destroy(name, _backend(args, spec), timeout=args.timeout)
    if _output(args) == "json":
        _print_json(result.plan.to_dict())
    else:
        print(
            result.plan.diff()
            if result.plan
            else f"endpoint {name} does not exist: nothing to destroy."
        )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    _emit_state(args, _backend(args).get(args.name))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    states = _backend(args).list_endpoints()
    if _output(args) == "json":
        _print_json([_state_dict(s) for s in states])
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


def _version_from_args(args: argparse.Namespace) -> Any:
    from endpointkit.spec import Resources, VersionSpec

    if args.from_spec:
        return _load_spec(args.from_spec).version(args.version)
    if not (args.model or args.predictor or args.image):
        raise UsageProblem("deploy needs --from-spec FILE, or --model/--predictor/--image")
    from pydantic import ValidationError as PydanticError

    try:
        return VersionSpec(
            name=args.version,
            model=args.model,
            image=args.image,
            predictor=args.predictor,
            env=_pairs(args.env, "--env"),
            resources=Resources(instance_type=args.instance_type, machine_type=args.machine_type),
        )
    except PydanticError as exc:
        details = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'version'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False)
        )
        raise UsageProblem(f"invalid version: {details}") from None


def _handle(args: argparse.Namespace) -> Any:
    from endpointkit.endpoint import Endpoint

    spec = _load_spec(args.spec_file) if args.spec_file else None
    return Endpoint(args.name, _backend(args, spec))


def _change(args: argparse.Namespace, run: Callable[[Any, dict[str, Any]], Any]) -> int:
    options = {"wait": not args.no_wait, "timeout": args.timeout, "progress": _progress(args)}
    _emit_state(args, run(_handle(args), options))
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    version = _version_from_args(args)
    return _change(args, lambda ep, o: ep.deploy(version, args.traffic, **o))


def cmd_rollout(args: argparse.Namespace) -> int:
    import json

    version = _version_from_args(args)
    gates: dict[str, Any] = {}
    if args.probe:
        try:
            gates["probe"] = json.loads(args.probe)
        except ValueError as exc:
            raise UsageProblem(f"--probe is not valid JSON: {exc}") from None
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
    quiet = _output(args) == "json"
    result = _handle(args).rollout(
        version,
        strategy,
        timeout=args.timeout,
        on_step=None if quiet else (lambda text: print(f"rollout: {text}", file=sys.stderr)),
    )
    if quiet:
        _print_json(
            {
                "version": result.version,
                "steps": result.steps,
                "probes": result.probes,
                "probe_errors": result.probe_errors,
                "state": _state_dict(result.state) if result.state else None,
            }
        )
    elif result.state is not None:
        _render_state(result.state)
    return 0


def cmd_traffic(args: argparse.Namespace) -> int:
    shares: dict[str, int] = {}
    for version, value in _pairs(args.shares, "traffic share").items():
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


def cmd_invoke(args: argparse.Namespace) -> int:
    import json

    from endpointkit.invocation import encode_instances

    if args.instances is not None:
        try:
            instances = json.loads(args.instances)
        except ValueError as exc:
            raise UsageProblem(f"--instances is not valid JSON: {exc}") from None
        body = encode_instances(instances)
    elif args.data is not None:
        body = args.data.encode()
    elif args.file is not None:
        try:
            if args.file == "-":
                body = sys.stdin.buffer.read()
            else:
                with open(args.file, "rb") as handle:
                    body = handle.read()
        except OSError as exc:
            raise UsageProblem(f"cannot read {args.file!r}: {exc.strerror}") from None
    else:
        raise UsageProblem("invoke needs --instances, --data or --file")
    if args.stream:
        return _invoke_stream(args, body)
    result = _handle(args).invoke(
        body,
        content_type=args.content_type,
        accept=args.accept,
        version=args.target_version,
        custom_attributes=args.custom_attributes,
        timeout=None,
    )
    if _output(args) == "json":
        decoded = result.decode()
        _print_json(
            {
                "version": result.version,
                "content_type": result.content_type,
                "body": decoded if not isinstance(decoded, bytes) else decoded.hex(),
                "custom_attributes": result.custom_attributes,
            }
        )
    else:
        text = result.body.decode("utf-8", "replace")
        print(text)
        if result.version:
            print(f"(served by {result.version})", file=sys.stderr)
    return 0


def _invoke_stream(args: argparse.Namespace, body: bytes) -> int:
    """Print each chunk the moment it arrives (text: raw bytes; json: one line per chunk)."""
    import json

    from endpointkit.invocation import EVENT_STREAM

    as_json = _output(args) == "json"
    out = sys.stdout.buffer
    with _handle(args).invoke_stream(
        body,
        content_type=args.content_type,
        accept=args.accept or EVENT_STREAM,
        version=args.target_version,
        custom_attributes=args.custom_attributes,
        timeout=None,
    ) as stream:
        if stream.version and not as_json:
            print(f"(served by {stream.version})", file=sys.stderr, flush=True)
        for chunk in stream:
            if as_json:
                line = {"version": stream.version, "chunk": chunk.decode("utf-8", "replace")}
                out.write(json.dumps(line).encode() + b"\n")
            else:
                out.write(chunk)
            out.flush()
    if not as_json:
        out.write(b"\n")
        out.flush()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import json

    from endpointkit.terraform import export_terraform

    spec = _load_spec(args.spec)
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


def cmd_history(args: argparse.Namespace) -> int:
    events = _handle(args).history()
    if _output(args) == "json":
        _print_json([e.model_dump(mode="json") for e in events])
        return 0
    for event in events:
        when = event.time.isoformat(timespec="seconds")
        version = f" {event.version}" if event.version else ""
        print(f"{when}  {event.kind:<10}{version}  {event.message}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from endpointkit.serving.__main__ import main as serve_main
    except ImportError as exc:
        from endpointkit.errors import MissingDependency

        raise MissingDependency(
            f"the serving server needs packages that are not installed ({exc.name}).",
            hint="pip install 'endpointkit[serve]'",
        ) from exc
    return int(serve_main(list(args.serve_args)))


def cmd_local(args: argparse.Namespace) -> int:
    from endpointkit.adapters.local.commands import main as local_main

    return int(local_main(list(args.local_args)))


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "plan": cmd_plan,
    "apply": cmd_apply,
    "destroy": cmd_destroy,
    "status": cmd_status,
    "list": cmd_list,
    "deploy": cmd_deploy,
    "rollout": cmd_rollout,
    "traffic": cmd_traffic,
    "promote": cmd_promote,
    "rollback": cmd_rollback,
    "undeploy": cmd_undeploy,
    "scale": cmd_scale,
    "invoke": cmd_invoke,
    "history": cmd_history,
    "export": cmd_export,
    "tf": cmd_tf,
    "serve": cmd_serve,
    "local": cmd_local,
}


def _exit_code(exc: BaseException) -> int:
    from endpointkit import errors

    table: list[tuple[type[BaseException], int]] = [
        (errors.ValidationError, EXIT_USAGE),
        (errors.NotFound, EXIT_NOT_FOUND),
        (errors.DeploymentFailed, EXIT_DEPLOY),
        (errors.RolledBack, EXIT_DEPLOY),
        (errors.Timeout, EXIT_TIMEOUT),
        (errors.Retryable, EXIT_RETRY),
        (errors.ModelError, EXIT_MODEL),
    ]
    return next((code for kind, code in table if isinstance(exc, kind)), EXIT_ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (see EXIT_CODES)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        return COMMANDS[args.command](args)
    except UsageProblem as exc:
        print(f"error: endpointkit {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from endpointkit.errors import EndpointKitError

        if debug:
            import traceback

            traceback.print_exc()
        if not isinstance(exc, EndpointKitError):
            print(
                f"endpointkit: unexpected error: {type(exc).__name__}: {exc} "
                "(run with --debug for the traceback)",
                file=sys.stderr,
            )
            return EXIT_ERROR
        if _output(args) == "json":
            import json

            print(json.dumps(exc.context(), default=str), file=sys.stderr)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return _exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
