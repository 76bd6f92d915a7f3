"""Run the app under uvicorn with httptools and uvloop, no access log, graceful SIGTERM.

Why uvicorn and not granian: on a quiet core the same raw ASGI predict path measured 43-45k
req/s on uvicorn (httptools + uvloop) against 29k on granian's ASGI interface
(shared/research/serving-perf.md 0.2; granian only wins for GETs, via RSGI, an interface this
app does not speak). Our benchmark runs this app on both (benchmarks/results/serving.md): on a
2-core box busy with other work, granian answered 1.7x the requests/s of uvicorn but used only
~8 % less CPU per request, i.e. it coped better with the contention rather than doing less work.
Until a quiet-machine run says otherwise, uvicorn stays: the quiet-core numbers above, plus its
graceful-shutdown and multi-worker supervisor, which the tests exercise. The app is plain ASGI:
``granian --interface asgi --factory endpointkit.serving.app:create_app`` serves it unchanged.

SIGTERM: uvicorn stops accepting (new connections are refused), lets in-flight requests
finish within ``grace_s`` (default 25 s; SageMaker sends SIGKILL 30 s after SIGTERM), answers
those still running then 503 with Retry-After, runs the lifespan shutdown and exits 0. With
several workers, ``supervisor.py`` replaces a worker that dies, whatever its exit code.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
from typing import Any

from .settings import Settings

APP = "endpointkit.serving.app:create_app"


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run(settings: Settings) -> int:
    """Serve until signalled; return the process exit code."""
    try:
        import uvicorn  # noqa: F401 - the server extra, checked before any download
    except ImportError:
        print(
            "endpointkit serving needs its server extra: pip install 'endpointkit[serve]'",
            file=sys.stderr,
        )
        return 2
    from .prefetch import fetched_once

    with fetched_once(settings) as local:  # remote artifacts: once, removed at exit
        return _serve(local)


def _serve(settings: Settings) -> int:
    import uvicorn

    http = "httptools" if _has("httptools") else "h11"
    loop = "uvloop" if _has("uvloop") else "asyncio"
    if http != "httptools" or loop != "uvloop":  # never fall back silently: it costs 2-5x
        print(
            f'{{"level":"warning","event":"slow_server_stack","http":"{http}","loop":"{loop}",'
            f'"hint":"pip install \'endpointkit[serve]\'"}}',
            file=sys.stderr,
            flush=True,
        )
    protocol: Any = http
    if http == "httptools":  # uvicorn's, plus header limits and read timeouts
        from .protocol import LimitedHttpToolsProtocol

        protocol = LimitedHttpToolsProtocol
    config = uvicorn.Config(
        APP,
        factory=True,
        host=settings.host,
        port=settings.port,
        uds=settings.uds,  # bound by the parent with several workers (bind_socket below)
        workers=settings.workers,
        http=protocol,
        loop=loop,
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level="warning",
        server_header=False,
        timeout_keep_alive=75,
        timeout_graceful_shutdown=max(1, math.ceil(settings.grace_s)),
        backlog=4096,
        h11_max_incomplete_event_size=settings.max_header_bytes,  # the h11 fallback: 400
    )
    from .supervisor import GracefulServer, Supervisor

    if settings.workers > 1:
        sock = config.bind_socket()
        supervisor = Supervisor(config, sockets=[sock])
        try:
            supervisor.run()  # exits 0 after SIGTERM, 3 when a worker could not start
        finally:
            _remove(settings.uds)
        return 3 if supervisor.gave_up else 0
    server = GracefulServer(config)
    try:
        server.run()
    finally:
        if server.started:  # it bound the socket (uvicorn binds after the lifespan startup)
            _remove(settings.uds)
    return 0 if server.started else 3


def _remove(uds: str | None) -> None:
    """Remove the Unix socket this process bound: a file left behind fails the next bind with
    several workers (uvicorn's bind_socket does not replace it)."""
    if uds:
        with contextlib.suppress(OSError):
            os.unlink(uds)
