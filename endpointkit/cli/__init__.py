"""`endpointkit ...`: parse arguments, call the public API, render the result.

Thin on purpose: every command maps to one API call. Only argparse is imported at start so
`endpointkit --help` stays fast; the API and rich load when a command runs.

Here: main() and error reporting (one line per error). _parser: the arguments; _codes: exit
codes; _output: text/JSON rendering; _inputs: arguments to API objects; _commands: the table
of command modules (_lifecycle, _changes, _invoke, _inspect, _export), imported only once a
command has parsed; _passthrough: serve and local.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from endpointkit.cli._codes import (
    EXIT_BROKEN_PIPE,
    EXIT_CHANGES,
    EXIT_CODES,
    EXIT_DEPLOY,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_MODEL,
    EXIT_NOT_FOUND,
    EXIT_RETRY,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    UsageProblem,
    exit_code,
)
from endpointkit.cli._output import drop_stdout, output_format, show_progress
from endpointkit.cli._parser import build_parser

if TYPE_CHECKING:
    from endpointkit.errors import EndpointKitError

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_CHANGES",
    "EXIT_CODES",
    "EXIT_DEPLOY",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_MODEL",
    "EXIT_NOT_FOUND",
    "EXIT_RETRY",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "PASSTHROUGH",
    "UsageProblem",
    "build_parser",
    "main",
]

#: Commands whose arguments go to another parser unchanged (their own --help included).
PASSTHROUGH = ("serve", "local")


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
    if args is not None and output_format(args) == "json":
        import json

        print(json.dumps(exc.context(), default=str), file=sys.stderr)
    else:
        print(f"error: {error_line(exc)}", file=sys.stderr)
    return exit_code(exc)


def _run(argv: list[str]) -> int:
    args: argparse.Namespace | None = None
    try:
        if argv and argv[0] in PASSTHROUGH:  # argparse.REMAINDER would swallow their --help
            from endpointkit.cli._passthrough import local, serve

            return serve(argv[1:]) if argv[0] == "serve" else local(argv[1:])
        args = build_parser().parse_args(argv)
        from endpointkit.cli._commands import COMMANDS
        from endpointkit.progress import default_progress

        with default_progress(show_progress(args)):
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
        drop_stdout()
        return EXIT_BROKEN_PIPE
