"""The floor: a bare ASGI app on the same uvicorn (httptools, uvloop, no access log, orjson)
that does the least a predict server can do: parse JSON, sum each row, answer JSON."""

from __future__ import annotations

from typing import Any

import orjson


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """GET -> ``{}``; POST -> ``{"predictions": [sum(row) ...]}``."""
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    if scope["method"] == "POST":
        message = await receive()
        body = message.get("body", b"")
        while message.get("more_body"):
            message = await receive()
            body += message.get("body", b"")
        rows = orjson.loads(body)["instances"]
        out = orjson.dumps({"predictions": [float(sum(r)) for r in rows]})
    else:
        out = b"{}"
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})
