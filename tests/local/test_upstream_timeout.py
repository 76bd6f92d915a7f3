"""The gateway's upstream client gives up on a version that does not answer in time.

Deadlines share one timer per pool (client.py, `_Deadlines`); these pin what a timer per
request gave: each request times out on its own timeout (not a neighbour's), at most
LATE_SHARE late, even after its pool is closed (a retired version may hang), and the timed-out
connection is never reused. A real socket server that reads requests and never answers (or
answers only the paths it is told to).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from endpointkit.adapters.local._http.client import LATE_SHARE, Pool, UpstreamTimeout

OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


@asynccontextmanager
async def _server() -> AsyncIterator[tuple[int, list[int]]]:
    """A server on 127.0.0.1 that answers `/fast` at once and never answers anything else;
    yields its port and the number of connections it has accepted (a one-item list)."""
    accepted = [0]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                if head.split(b" ", 2)[1] == b"/fast":
                    writer.write(OK)
                # else: never answer
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()


async def _timed(pool: Pool, path: bytes, timeout: float) -> float:
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout, match=f"no answer within {timeout:g} s"):
        await pool.request(b"POST", path, [], b"{}", timeout)
    return time.monotonic() - started


def test_each_request_times_out_on_its_own_timeout() -> None:
    async def main() -> None:
        async with _server() as (port, _):
            pool = Pool(port)
            # a long request first, then a short one: the short one must not wait for the
            # long one's deadline, and the long one must still time out after it
            long = asyncio.ensure_future(_timed(pool, b"/slow", 1.5))
            await asyncio.sleep(0.05)
            short = await _timed(pool, b"/slow", 0.3)
            # well before the long one's 1.5 s (slack for a loaded machine)
            assert 0.3 <= short <= 0.3 * (1 + LATE_SHARE) + 0.5, short
            waited = await asyncio.wait_for(long, 5)
            assert 1.5 <= waited <= 1.5 * (1 + LATE_SHARE) + 0.5, waited
            pool.close()

    asyncio.run(main())


def test_a_request_in_flight_times_out_after_its_pool_is_closed() -> None:
    async def main() -> None:
        async with _server() as (port, _):
            pool = Pool(port)
            pending = asyncio.ensure_future(_timed(pool, b"/slow", 0.4))
            await asyncio.sleep(0.05)
            pool.close()  # a resize retired the version; its request is still bounded
            waited = await asyncio.wait_for(pending, 5)
            assert 0.4 <= waited <= 0.4 * (1 + LATE_SHARE) + 0.5, waited

    asyncio.run(main())


def test_answered_requests_leave_nothing_behind_and_a_timed_out_connection_is_dropped() -> None:
    async def main() -> None:
        async with _server() as (port, accepted):
            pool = Pool(port)
            for _ in range(50):
                status, _, body = await pool.request(b"POST", b"/fast", [], b"{}", 5.0)
                assert (status, body) == (200, b"ok")
            assert accepted[0] == 1  # kept alive
            assert not pool._deadlines.pending  # no deadline outlives its request
            await _timed(pool, b"/slow", 0.2)
            status, _, _ = await pool.request(b"POST", b"/fast", [], b"{}", 5.0)
            assert status == 200
            assert accepted[0] == 2  # the connection that timed out was not reused
            pool.close()

    asyncio.run(main())
