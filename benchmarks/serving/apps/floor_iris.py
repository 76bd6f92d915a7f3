"""The floor for the iris model: the bare ASGI app (floor.py) with scikit-learn's `predict`
in place of the row sum, orjson in and out. MODEL_DIR holds model.joblib."""

from __future__ import annotations

import os
from typing import Any

import joblib
import numpy as np
import orjson

MODEL = joblib.load(os.path.join(os.environ["MODEL_DIR"], "model.joblib"))


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """GET -> ``{}``; POST -> ``{"predictions": model.predict(instances)}``."""
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
        rows = np.asarray(orjson.loads(body)["instances"])
        out = orjson.dumps({"predictions": MODEL.predict(rows)}, option=orjson.OPT_SERIALIZE_NUMPY)
    else:
        out = b"{}"
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})
