"""`serve` and `local`: commands whose arguments go to another parser unchanged."""

from __future__ import annotations

import sys

from endpointkit.cli._codes import EXIT_ERROR, EXIT_USAGE


def serve(argv: list[str]) -> int:
    """`endpointkit serve ...`: the serving server's own parser and exit codes, except that
    'did not start' (its 3, or uvicorn's exit 1) is reported as one line and exit 1."""
    try:
        from endpointkit.serving.__main__ import main as serve_main
    except ImportError as exc:
        from endpointkit.errors import MissingDependency
        from endpointkit.extras import install_hint

        raise MissingDependency(
            f"the serving server needs packages that are not installed ({exc.name}).",
            hint=install_hint("serve"),
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


def local(argv: list[str]) -> int:
    from endpointkit.adapters.local.commands import main as local_main

    return int(local_main(argv))
