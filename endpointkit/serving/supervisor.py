"""uvicorn's server and multi-worker supervisor, with the exits and the drain we need
(read at uvicorn 0.55, ``uvicorn/server.py`` and ``uvicorn/supervisors/multiprocess.py``).

- ``GracefulServer``: stock uvicorn re-raises the captured signal after shutting down, so the
  process dies by SIGTERM (exit -15); SageMaker and the local supervisor expect a clean exit.
- ``Supervisor`` (``--workers`` > 1): uvicorn's parent stops every worker and exits 0 as soon
  as one worker exits with 3 (``STARTUP_FAILURE``), whatever that worker did before. A worker
  that has answered the parent's health check as started is replaced whatever its exit code
  (predictor code may call ``os._exit(3)``); a worker that exits 3 before it ever started
  means the app cannot start, and then the parent stops and exits 3, not 0 (``gave_up``).
- drain: a worker's gRPC server (``grpc_server.py``) starts draining when its HTTP side does.
- drain: the parent holds the listening socket too, so after SIGTERM the kernel kept
  accepting connections that no worker would serve (they hung until the parent exited). The
  parent now closes its copy before signalling the workers, which close theirs: new
  connections are refused. In-flight requests still cut at the end of the grace period get
  503 with Retry-After from the app (``app.py``), not uvicorn's 500.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator

from uvicorn import Server
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

logger = logging.getLogger("uvicorn.error")


class GracefulServer(Server):
    """uvicorn.Server that exits 0 after a graceful SIGTERM, and drains gRPC with HTTP."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        from .grpc_server import begin_drain

        begin_drain()  # gRPC stops taking calls now, not after HTTP has drained
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


class Worker(Process):
    """A worker process running ``GracefulServer``; ``served`` once it reported started."""

    served = False

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = GracefulServer(config=self.config)
        return self._server


class Supervisor(Multiprocess):
    """uvicorn's ``Multiprocess`` with the exit and drain rules above."""

    gave_up = False

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            process = Worker(self.config, self.sockets)
            process.start()
            self.processes.append(process)

    def run(self) -> None:
        """uvicorn's loop, polling every 0.1 s instead of 0.5 s: a SIGTERM closes the listening
        socket sooner."""
        self.init_processes()
        while not self.should_exit.wait(0.1):
            self.handle_signals()
            self.keep_subprocess_alive()
        self.terminate_all()
        self.join_all()

    def terminate_all(self) -> None:
        for sock in self.sockets:  # refuse new connections while the workers drain
            sock.close()
        super().terminate_all()

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        timeout = self.config.timeout_worker_healthcheck
        for idx, process in enumerate(self.processes):
            started = process.process.is_alive() and process._healthcheck(timeout)
            if started:
                if isinstance(process, Worker):
                    process.served = True
                continue
            if started is False and process.process.is_alive():
                continue  # alive, still starting
            process.kill()  # dead, or hung
            process.join()
            served = isinstance(process, Worker) and process.served
            if process.exitcode == STARTUP_FAILURE and not served:
                logger.error(
                    "Worker process [%s] failed to start; stopping (exit %d).",
                    process.pid,
                    STARTUP_FAILURE,
                )
                self.gave_up = True
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.warning(
                "Worker process [%s] exited with %s; starting a new one.",
                process.pid,
                process.exitcode,
            )
            replacement = Worker(self.config, self.sockets)
            replacement.start()
            self.processes[idx] = replacement
