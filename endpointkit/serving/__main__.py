"""``python -m endpointkit.serving [serve] [--host H] [--port P | --uds PATH] [--model-dir D] ...``.

Flags override the environment: each one is written into its ``ENDPOINTKIT_*`` variable, which
every worker process then reads through :class:`~endpointkit.serving.settings.Settings`.
"""

from __future__ import annotations

import argparse
import os
import sys

FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--host", "ENDPOINTKIT_HOST", str, "interface to bind (default 0.0.0.0)"),
    (
        "--port",
        "ENDPOINTKIT_PORT",
        int,
        "port (default AIP_HTTP_PORT, SAGEMAKER_BIND_TO_PORT, 8080)",
    ),
    ("--grpc-port", "ENDPOINTKIT_GRPC_PORT", int, "also serve OIP v2 over gRPC on this port"),
    ("--uds", "ENDPOINTKIT_UDS", str, "listen on this Unix socket instead of host and port"),
    ("--model-dir", "ENDPOINTKIT_MODEL_DIR", str, "model directory or s3:// gs:// URI"),
    ("--workers", "ENDPOINTKIT_WORKERS", int, "worker processes (default: CPU cores)"),
    ("--predictor", "ENDPOINTKIT_PREDICTOR", str, "explicit predictor, module:Class"),
    ("--model-name", "ENDPOINTKIT_MODEL_NAME", str, "model name on OIP routes (default model)"),
    ("--version", "ENDPOINTKIT_VERSION", str, "version name for headers, logs and metrics"),
    ("--request-log", "ENDPOINTKIT_REQUEST_LOG", str, "all | sampled | errors | off"),
    ("--max-in-flight", "ENDPOINTKIT_MAX_IN_FLIGHT", int, "503 beyond this many requests/worker"),
    ("--timeout", "ENDPOINTKIT_REQUEST_TIMEOUT_S", float, "per-request timeout, seconds (504)"),
    ("--grace", "ENDPOINTKIT_GRACE_S", float, "SIGTERM drain period, seconds (default 25)"),
    ("--max-batch-size", "ENDPOINTKIT_MAX_BATCH_SIZE", int, "override the predictor's batch size"),
    ("--max-latency-ms", "ENDPOINTKIT_MAX_LATENCY_MS", float, "override the batching delay"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m endpointkit.serving",
        description="Serve a model over the SageMaker, Vertex AI and Open Inference Protocol "
        "contracts on one port.",
    )
    parser.add_argument(
        "command", nargs="?", default="serve", choices=["serve"], help="SageMaker passes 'serve'"
    )
    for flag, env, kind, text in FLAGS:
        parser.add_argument(flag, dest=env, type=kind, default=None, help=f"{text} [{env}]")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse flags, resolve settings, serve; returns the exit code."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    for _, env, _, _ in FLAGS:
        value = getattr(args, env)
        if value is not None:
            os.environ[env] = str(value)
    from .server import run
    from .settings import Settings

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"endpointkit serve: {exc}", file=sys.stderr)
        return 2
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
