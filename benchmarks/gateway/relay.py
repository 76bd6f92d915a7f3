"""A bare relay: the floor for the gateway's hop (`python -m benchmarks.gateway.relay`).

One uvloop process that accepts TCP connections on 127.0.0.1:PORT and, for each, opens one
connection to the version server (its Unix socket's path, or a port on 127.0.0.1) and copies
bytes both ways as they come, parsing nothing; the upstream connection lives as long as the
client's (keep-alive). What the gateway costs beyond this is its HTTP and routing work.

Nothing is lost silently: each connection counts the bytes it read from one side and wrote to
the other, and a connection that ends with a difference (a side closed with bytes not yet
relayed) is reported on stderr and in the totals printed at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any, cast

TOTALS = {"connections": 0, "to_version": 0, "to_client": 0, "short": 0}
CONNECTIONS: set[_Client] = set()


class _Upstream(asyncio.Protocol):
    """The version side of one relayed connection."""

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        client = self.client
        client.from_version += len(data)
        if client.transport is not None:
            client.transport.write(data)
            client.to_client += len(data)

    def pause_writing(self) -> None:  # the version reads slower than the client writes
        if self.client.transport is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.client.close()


class _Client(asyncio.Protocol):
    """The client side: what arrives before the upstream connection is made waits for it
    (uvloop starts reading after `connection_made`, so pausing there is not enough)."""

    def __init__(self, address: int | str) -> None:
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.upstream: _Upstream | None = None
        self.from_client = self.to_version = self.from_version = self.to_client = 0
        self.early: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        CONNECTIONS.add(self)
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if isinstance(self.address, str):
                _, up = await loop.create_unix_connection(lambda: _Upstream(self), self.address)
            else:
                _, up = await loop.create_connection(
                    lambda: _Upstream(self), "127.0.0.1", self.address
                )
        except OSError as exc:
            print(f"relay: cannot reach the version: {exc}", file=sys.stderr, flush=True)
            self.close()
            return
        self.upstream = up
        if self.closed:  # the client went away meanwhile
            up.transport.close()  # type: ignore[union-attr]
            return
        if self.early:
            data = b"".join(self.early)
            self.early = []
            up.transport.write(data)  # type: ignore[union-attr]
            self.to_version += len(data)

    def data_received(self, data: bytes) -> None:
        self.from_client += len(data)
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.write(data)
            self.to_version += len(data)
        elif upstream is None:
            self.early.append(data)

    def pause_writing(self) -> None:  # the client reads slower than the version answers
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        CONNECTIONS.discard(self)
        if self.transport is not None:
            self.transport.close()
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.close()
        TOTALS["connections"] += 1
        TOTALS["to_version"] += self.to_version
        TOTALS["to_client"] += self.to_client
        if self.from_client != self.to_version or self.from_version != self.to_client:
            TOTALS["short"] += 1
            print(
                f"relay: bytes lost on a connection: client {self.from_client} -> version "
                f"{self.to_version}, version {self.from_version} -> client {self.to_client}",
                file=sys.stderr,
                flush=True,
            )


async def serve(port: int, address: int | str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(lambda: _Client(address), "127.0.0.1", port)
    await stop.wait()
    server.close()
    for conn in list(CONNECTIONS):
        conn.close()  # count what is still open


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway.relay")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="a Unix socket's path, or a port")
    parser.add_argument("--report", help="write the byte totals here (JSON) at exit")
    args = parser.parse_args(argv)
    address: int | str = int(args.upstream) if args.upstream.isdigit() else args.upstream
    runner: Any
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(serve(args.port, address))
    print(f"relay: {TOTALS}", file=sys.stderr, flush=True)
    if args.report:
        with open(args.report, "w") as handle:
            json.dump(TOTALS, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
