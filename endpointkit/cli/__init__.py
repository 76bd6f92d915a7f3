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
    from endpointkit.errors import EndpointKitError
    from endpointkit.spec import EndpointSpec, EndpointState

EXIT_CODES = """\
exit codes:
  0    success
  1    any other error: the backend refused or failed (see the message), or
       'serve' could not start (port in use, model failed to load)
  2    invalid input: bad spec, flag or argument (nothing was changed)
  3    endpoint or version not found
  4    a deployment failed or was rolled back
  5    timed out waiting
  6    throttled or temporarily unavailable: retry later
  7    the model answered with an error (invoke)
  10   plan --detailed-exitcode: the plan has changes
  130  interrupted (Ctrl-C); a change already started may still be running:
       'endpointkit status NAME' shows where it is
  141  the output pipe was closed early (e.g. '| head'): the output was cut short,
       nothing else went wrong
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
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
#: Commands whose arguments go to another parser unchanged (their own --help included).
PASSTHROUGH = ("serve", "local")


class UsageProblem(Exception):
    """A command-line mistake detected after parsing (bad KEY=VALUE, missing file...)."""


# -- argument parsing ---------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("backend and output")
    group.add_argument(
        "--backend",
        help="local (default), sagemaker, vertex or a plugin; env ENDPOINTKIT_BACKEND; "
        "a SPEC's own backend is used when not given (the in-process mock is for the Python "
        "API: it cannot keep endpoints between CLI commands)",
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
    group.add_argument("--debug", action="store_true", help="show tracebacks")
    return common


def _waits(no_wait: bool) -> argparse.ArgumentParser:
    """--timeout (and --no-wait) for commands that change an endpoint and wait for it."""
    waits = argparse.ArgumentParser(add_help=False)
    group = waits.add_argument_group("waiting")
    group.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds to wait for the change to finish (default 1800)",
    )
    if no_wait:
        group.add_argument(
            "--no-wait", action="store_true", help="return once the change is started"
        )
    return waits


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
    common, timeout, wait = _common(), _waits(no_wait=False), _waits(no_wait=True)
    parser = argparse.ArgumentParser(
        prog="endpointkit",
        description="Create, version, split traffic and invoke ML model endpoints on "
        "SageMaker, Vertex AI or this machine.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="endpointkit 0.1.0")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str, *extra: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common, *extra],
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    spec_help = "endpoint spec (.yaml or .json)"
    name_help = "endpoint name"
    p = add("plan", "Show what apply would change to make the endpoint match SPEC.")
    p.add_argument("spec", metavar="SPEC", help=spec_help)
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help=f"exit {EXIT_CHANGES} when there are changes, 0 when none",
    )
    p = add("apply", "Make the endpoint match SPEC (idempotent; prints the plan it runs).", timeout)
    p.add_argument("spec", metavar="SPEC", help=spec_help)
    p = add("destroy", "Delete the endpoint of SPEC (or --name) and all its versions.", timeout)
    p.add_argument("spec", metavar="SPEC", nargs="?", help=f"{spec_help}; or give --name")
    p.add_argument("--name", help="endpoint name, instead of a SPEC")
    p = add("status", "Show an endpoint: status, versions, traffic, shadow.")
    p.add_argument("name", metavar="NAME", help=name_help)
    add("list", "List the endpoints endpointkit manages on the backend.")
    p = add("deploy", "Add an immutable version to an endpoint.", wait)
    p.add_argument("name", metavar="NAME", help=name_help)
    p.add_argument("version", metavar="VERSION", help="version name, e.g. v2")
    p.add_argument("--traffic", type=int, default=0, help="percent of traffic (default 0)")
    _version_flags(p)
    p = add(
        "rollout", "Deploy a version and shift traffic to it progressively, with gates.", timeout
    )
    p.add_argument("name", metavar="NAME", help=name_help)
    p.add_argument("version", metavar="VERSION", help="version name, e.g. v2")
    _version_flags(p)
    how = p.add_mutually_exclusive_group()
    how.add_argument("--canary", type=int, metavar="PERCENT", help="canary share (default 10)")
    how.add_argument("--linear", type=int, metavar="STEP", help="shift STEP%% at a time")
    how.add_argument("--blue-green", action="store_true", help="all at once, then drop old")
    how.add_argument("--all-at-once", action="store_true", help="all traffic in one step")
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
    p = add("traffic", "Set the traffic split, e.g. 'traffic churn v1=90 v2=10'.", wait)
    p.add_argument("name", metavar="NAME", help=name_help)
    p.add_argument(
        "shares", metavar="VERSION=PERCENT", nargs="+", help="each version's share; sum 100"
    )
    p = add("promote", "Send all traffic to VERSION (others stay deployed).", wait)
    p.add_argument("name", metavar="NAME", help=name_help)
    p.add_argument("version", metavar="VERSION", help="the version to get all traffic")
    p = add("rollback", "Restore the traffic split in force before the latest change.", wait)
    p.add_argument("name", metavar="NAME", help=name_help)
    p = add("undeploy", "Remove a version; its traffic moves to the others first.", wait)
    p.add_argument("name", metavar="NAME", help=name_help)
    p.add_argument("version", metavar="VERSION", help="the version to remove")
    p = add(
        "scale",
        "Change a live version's replicas in place, e.g. 'scale churn v2 --min 2 --max 6 "
        "--target-cpu 60'. What is not given is kept. The local backend runs --min worker "
        "processes and has no autoscaler.",
        wait,
    )
    p.add_argument("name", metavar="NAME", help=name_help)
    p.add_argument("version", metavar="VERSION", help="the version to scale")
    p.add_argument("--min", dest="min_replicas", type=int, help="minimum replicas")
    p.add_argument("--max", dest="max_replicas", type=int, help="maximum replicas")
    auto = p.add_mutually_exclusive_group()
    auto.add_argument(
        "--target-cpu", type=int, metavar="PERCENT", help="autoscale on CPU (SageMaker, Vertex)"
    )
    auto.add_argument(
        "--target-invocations",
        type=int,
        metavar="N",
        help="autoscale on invocations per replica per minute (SageMaker, Vertex)",
    )
    auto.add_argument("--no-autoscaling", action="store_true", help="turn autoscaling off")
    p = add("invoke", "Send a request to an endpoint and print the answer.")
    p.add_argument("name", metavar="NAME", help=name_help)
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--instances", help='JSON list, one item per prediction; sent as {"instances": [...]}'
    )
    source.add_argument("--data", help="request body as text")
    source.add_argument("--file", help="request body from a file ('-' for stdin)")
    p.add_argument("--content-type", default="application/json", help="of the request body")
    p.add_argument("--accept", default=None, help="content type wanted for the answer")
    p.add_argument("--target-version", dest="target_version", help="pin one version")
    p.add_argument("--custom-attributes", help="passed to the model (SageMaker semantics)")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait for the answer (default: the backend's)",
    )
    p.add_argument(
        "--stream",
        action="store_true",
        help="stream the answer, printing chunks as they arrive (Accept defaults to "
        "text/event-stream)",
    )
    p = add("export", "Export a spec for other tools: 'export terraform SPEC'.")
    p.add_argument("format", choices=("terraform",), help="what to export to")
    p.add_argument("spec", metavar="SPEC", help=spec_help)
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
        timeout,
    )
    p.add_argument("action", choices=("read", "apply", "destroy"), help="what Terraform asks for")
    p.add_argument("--name", help="endpoint name (tf destroy; env ENDPOINTKIT_ENDPOINT)")
    p = add("history", "Show an endpoint's events, oldest first.")
    p.add_argument("name", metavar="NAME", help=name_help)
    # Their arguments go to their own parsers unchanged (see main): these entries only list
    # them in `endpointkit --help`.
    commands.add_parser(
        "serve",
        help="Run the serving server (same as the container's 'serve'); "
        "'endpointkit serve --help' for its flags.",
        add_help=False,
    )
    commands.add_parser(
        "local",
        help="Manage the local backend's gateway: 'local status', 'local stop'.",
        add_help=False,
    )
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


def _progress(args: argparse.Namespace) -> bool | None:
    """None: the default (a spinner when stderr is a terminal); never for JSON output."""
    return False if _output(args) == "json" else None


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

    Console().print(state)


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
        if not isinstance(instances, list):
            raise UsageProblem(
                f"--instances must be a JSON list, one item per prediction (got a JSON "
                f"{type(instances).__name__}); e.g. --instances '[[5.1, 3.5, 1.4, 0.2]]'"
            )
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
        timeout=args.timeout,
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
        timeout=args.timeout,
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
    else:
        print(events)  # a History: one line per event
    return 0


def _serve(argv: list[str]) -> int:
    """`endpointkit serve ...`: the serving server's own parser and exit codes, except that
    'did not start' (its 3, or uvicorn's exit 1) is reported as one line and exit 1."""
    try:
        from endpointkit.serving.__main__ import main as serve_main
    except ImportError as exc:
        from endpointkit.errors import MissingDependency

        raise MissingDependency(
            f"the serving server needs packages that are not installed ({exc.name}).",
            hint="pip install 'endpointkit[serve]'",
        ) from exc
    try:
        code = int(serve_main(argv))
    except SystemExit as exc:  # argparse (--help: 0, bad flag: 2) or uvicorn's bind failure
        code = exc.code if isinstance(exc.code, int) else EXIT_ERROR
    if code in (0, EXIT_USAGE):
        return code
    print(f"error: endpointkit serve: {_why_serve_stopped()}", file=sys.stderr)
    return EXIT_ERROR


def _why_serve_stopped() -> str:
    import errno
    import socket

    from endpointkit.serving.settings import Settings

    unknown = "the server did not start; its log above says why (often: the model failed to load)."
    try:
        settings = Settings.from_env()  # serve's flags are in the environment by now
    except ValueError:
        return unknown
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((settings.host, settings.port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (
                f"port {settings.port} on {settings.host} is already in use; pass another "
                "--port or stop the server that holds it."
            )
    return unknown


def _local(argv: list[str]) -> int:
    from endpointkit.adapters.local.commands import main as local_main

    return int(local_main(argv))


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


def _canonical(exc: EndpointKitError) -> EndpointKitError:
    """One wording for 'endpoint not found', whichever layer noticed (a control-plane read,
    or the local gateway answering an invoke)."""
    from endpointkit.errors import NotFound

    if (
        isinstance(exc, NotFound)
        and exc.endpoint
        and exc.backend
        and exc.version is None
        and exc.message.startswith(f"endpoint {exc.endpoint!r} not found")
    ):
        canonical = NotFound(
            f"endpoint {exc.endpoint!r} not found on {exc.backend}.",
            hint=f"Run 'endpointkit list --backend {exc.backend}' to see endpoints.",
            backend=exc.backend,
            operation=exc.operation,
            endpoint=exc.endpoint,
        )
        return canonical
    return exc


def _report(args: argparse.Namespace | None, exc: Exception) -> int:
    """Print `exc` to stderr as one line (JSON for --output json); return its exit code."""
    from endpointkit.errors import EndpointKitError
    from endpointkit.render import error_line, first_line

    if args is not None and getattr(args, "debug", False):
        import traceback

        traceback.print_exc()
    if isinstance(exc, UsageProblem):
        command = f" {args.command}" if args is not None else ""
        print(f"error: endpointkit{command}: {first_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    if not isinstance(exc, EndpointKitError):
        print(
            f"endpointkit: unexpected error: {type(exc).__name__}: {first_line(str(exc))} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    exc = _canonical(exc)
    if args is not None and _output(args) == "json":
        import json

        print(json.dumps(exc.context(), default=str), file=sys.stderr)
    else:
        print(f"error: {error_line(exc)}", file=sys.stderr)
    return _exit_code(exc)


def _run(argv: list[str]) -> int:
    if argv and argv[0] in PASSTHROUGH:  # argparse.REMAINDER would swallow their --help
        try:
            return _serve(argv[1:]) if argv[0] == "serve" else _local(argv[1:])
        except BrokenPipeError:
            raise
        except Exception as exc:
            return _report(None, exc)
    args = build_parser().parse_args(argv)
    from endpointkit.progress import default_progress

    try:
        with default_progress(False if _output(args) == "json" else None):
            return COMMANDS[args.command](args)
    except BrokenPipeError:
        raise
    except Exception as exc:
        return _report(args, exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (see EXIT_CODES)."""
    try:
        try:
            code = _run(list(sys.argv[1:] if argv is None else argv))
        except SystemExit:  # argparse's --help, --version and usage errors
            sys.stdout.flush()
            raise
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        print(
            "interrupted; a change already started may still be running: "
            "'endpointkit status NAME' shows where it is.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_BROKEN_PIPE


def _drop_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (tests): nothing will be flushed to a pipe
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
