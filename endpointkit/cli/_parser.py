"""Argument definitions: `build_parser()` and the flag groups commands share.

Only argparse is imported here, so `endpointkit --help` stays fast.
"""

from __future__ import annotations

import argparse

from endpointkit.cli._codes import EXIT_CHANGES, EXIT_CODES


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
        "--framework",
        choices=("sklearn", "xgboost", "pytorch"),
        help="serve --model in the platform's prebuilt container for this framework",
    )
    p.add_argument("--framework-version", help="the framework container's version, e.g. 1.2-1")
    p.add_argument("--py-version", help="SageMaker framework container's Python, e.g. py310")
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
    p.add_argument(
        "--native",
        action="store_true",
        help="let the platform replace the only version in place, rolling back on --alarm "
        "(SageMaker deployment guardrails)",
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
    delivery = p.add_mutually_exclusive_group()
    delivery.add_argument(
        "--stream",
        action="store_true",
        help="stream the answer, printing chunks as they arrive (Accept defaults to "
        "text/event-stream)",
    )
    delivery.add_argument(
        "--async",
        dest="queued",
        action="store_true",
        help="queue the request (asynchronous inference) and print its inference id and "
        "where the answer will be written; read it with 'endpointkit result ID --endpoint NAME'",
    )
    p.add_argument(
        "--inference-id",
        dest="inference_id",
        help="the request's id (with --async: queuing the same id again queues nothing)",
    )
    p = add(
        "result",
        "Show a queued request's status, and its answer once done ('invoke --async').",
    )
    p.add_argument("inference_id", metavar="ID", help="the inference id 'invoke --async' printed")
    p.add_argument(
        "--endpoint", dest="name", required=True, metavar="NAME", help="the endpoint it was sent to"
    )
    p.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to this long for the answer (default: look once and report)",
    )
    p = add(
        "consume",
        "Read requests from a queue, invoke an endpoint, store each answer; a message is "
        "deleted only once its answer is stored. Stops cleanly on SIGTERM or Ctrl-C (exit 0).",
    )
    p.add_argument(
        "--queue",
        required=True,
        help="sqs://NAME, an SQS queue URL, pubsub://projects/P/subscriptions/S, or file://DIR "
        "(a folder of request files)",
    )
    p.add_argument(
        "--endpoint", dest="name", required=True, metavar="NAME", help="the endpoint to invoke"
    )
    p.add_argument(
        "--results",
        required=True,
        help="s3://bucket/prefix, gs://bucket/prefix or file://DIR: <key>.out per answer, "
        "<key>.error per failure",
    )
    p.add_argument("--concurrency", type=int, default=4, help="invokes at once (default 4)")
    p.add_argument(
        "--visibility-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a received message stays hidden (Pub/Sub: its ack deadline, at most "
        "600); extended while its invoke runs (default 30)",
    )
    p.add_argument(
        "--wait", type=float, default=10.0, metavar="SECONDS", help="long poll (SQS: up to 20)"
    )
    p.add_argument("--max-messages", type=int, metavar="N", help="stop after receiving N messages")
    p.add_argument(
        "--idle-exit", type=float, metavar="SECONDS", help="stop after SECONDS with no message"
    )
    p.add_argument(
        "--max-receives",
        type=int,
        default=5,
        metavar="N",
        help="a message failing transiently on its Nth delivery gets a .error and is deleted "
        "(default 5; 0 leaves it to the queue's redrive policy / dead-letter queue)",
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=25.0,
        metavar="SECONDS",
        help="on stop, how long to finish messages in flight before giving them back to the "
        "queue (default 25)",
    )
    p.add_argument(
        "--content-type",
        default="application/json",
        help="of message bodies without a ContentType attribute",
    )
    p.add_argument("--accept", default=None, help="content type wanted for the answers")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for each answer")
    p.add_argument("--region", help="AWS region of the queue and bucket (default: AWS_REGION)")
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
