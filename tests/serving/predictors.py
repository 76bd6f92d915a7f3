"""Small predictors the test servers load with ``--predictor predictors:Name``."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from pydantic import BaseModel


class Sum:
    """Sums each row: the benchmark's trivial model."""

    def load(self, model_dir: str) -> None:
        self.model_dir = model_dir

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        return [float(sum(row)) for row in instances]


class Echo:
    """Returns each instance; ``"bad"`` -> ValueError (422), ``"crash"`` -> RuntimeError (500)."""

    def load(self, model_dir: str) -> None:
        pass

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        items = instances.tolist() if hasattr(instances, "tolist") else list(instances)
        for item in items:
            if item == "bad":
                raise ValueError("'bad' is not a valid instance")
            if item == "crash":
                raise RuntimeError("secret internal detail")
        sleep = (parameters or {}).get("sleep")
        if sleep:
            time.sleep(float(sleep))
        if parameters and "custom_attributes" in parameters:
            parameters["custom_attributes"] = "seen=" + parameters["custom_attributes"]
        return instances


class BatchedEcho:
    """Echo with dynamic batching on; each prediction records the size of its batch."""

    max_batch_size = 64
    max_latency_ms = 20.0

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def load(self, model_dir: str) -> None:
        pass

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        items = instances.tolist() if hasattr(instances, "tolist") else list(instances)
        if any(i == "fail" or i == [-1.0] for i in items):
            raise ValueError("bad input")  # what one bad request causes
        if "crash" in items:
            raise RuntimeError("the model failed")  # the predictor failing as a whole
        time.sleep(0.002)  # a fixed per-call cost, like a real model
        return [{"echo": item, "batch": len(items)} for item in items]


class BatchedSum:
    """Row sums with batching on (OIP tensors arrive as one array per request)."""

    max_batch_size = 64
    max_latency_ms = 20.0

    def load(self, model_dir: str) -> None:
        pass

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        import numpy as np

        arr = np.asarray(instances, dtype=np.float64)
        if (arr < 0).any():
            raise RuntimeError("negative input")
        time.sleep(0.002)
        return arr.sum(axis=1)


class GatedLoad(Sum):
    """``load`` waits until the file ``$GATE_FILE`` exists (health gating without sleeps)."""

    def load(self, model_dir: str) -> None:
        gate = os.environ["GATE_FILE"]
        deadline = time.monotonic() + 60
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.02)


class BrokenLoad(Sum):
    """``load`` fails."""

    def load(self, model_dir: str) -> None:
        raise RuntimeError("weights file is corrupt")


class Person(BaseModel):
    age: int
    name: str


class Schema(Echo):
    """Declares a pydantic input schema."""

    input_schema = Person


class Shape(Sum):
    """Declares four features per instance."""

    input_shape = (4,)


class JsonSchema(Echo):
    """Declares a JSON Schema."""

    input_schema = {
        "type": "object",
        "properties": {"x": {"type": "number"}},
        "required": ["x"],
    }


class CustomTypes(Sum):
    """Decodes ``application/x-numbers`` (space separated) and encodes ``text/plain``."""

    content_types = ("application/x-numbers",)
    accept_types = ("text/plain",)

    def decode(self, body: bytes, content_type: str) -> Any:
        return [[float(x) for x in body.split()]]

    def encode(self, predictions: Any, accept: str) -> bytes:
        return " ".join(str(p) for p in predictions).encode()


class PrePost(Sum):
    """preprocess doubles every value, postprocess rounds."""

    def preprocess(self, instances: Any) -> Any:
        return [[2 * v for v in row] for row in instances]

    def postprocess(self, predictions: Any) -> Any:
        return [round(p) for p in predictions]


class WrongCount(Sum):
    """Returns one prediction too few (a predictor bug: 500)."""

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        return list(instances)[1:]


class Streamer(Sum):
    """Streams one item per instance, ``gap_s`` (a parameter) apart: "bad" fails before the
    first item (422), "boom" mid-stream (500). When a stream ends, closed early or not, it
    appends ``closed <first instance>`` to the file named by ``STREAM_LOG`` (if set)."""

    def predict_stream(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        params = parameters or {}
        gap = float(params.get("gap_s", 0.0))
        if "bad" in instances:
            raise ValueError("'bad' is not a valid instance")
        if "custom_attributes" in params:
            params["custom_attributes"] = "streamed=" + params["custom_attributes"]
        try:
            for index, item in enumerate(instances):
                if index and gap:
                    time.sleep(gap)
                if item == "boom":
                    raise RuntimeError("secret internal detail")
                raw = isinstance(item, str) and item.startswith("raw:")
                yield item[4:] if raw else {"index": index, "item": item}
        finally:
            log = os.environ.get("STREAM_LOG")
            if log:
                with open(log, "a") as handle:
                    handle.write(f"closed {instances[0]}\n")


class AsyncStreamer(Sum):
    """``Streamer`` as an async generator (runs on the event loop)."""

    async def predict_stream(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        import asyncio

        gap = float((parameters or {}).get("gap_s", 0.0))
        for index, item in enumerate(instances):
            if index and gap:
                await asyncio.sleep(gap)
            if item == "boom":
                raise RuntimeError("secret internal detail")
            yield {"index": index, "item": item}


class Leaky(Sum):
    """Raises exceptions whose text holds a secret: ValueError (422), a 503 ``status_code``
    exception, and a 400 ``status_code`` exception whose message is meant for the client."""

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        kind = (parameters or {}).get("raise")
        if kind == "value":
            raise ValueError("cannot parse row: db password=hunter2")
        if kind == "status503":
            raise _StatusError("upstream at 10.0.0.7 with token=hunter2 failed", 503)
        if kind == "status400":
            raise _StatusError("field 'age' must be positive", 400)
        return super().predict(instances, parameters)


class _StatusError(Exception):
    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class Slow100:
    """100 ms per predict call, like a real model; counts its calls in ``<model_dir>/calls``."""

    def load(self, model_dir: str) -> None:
        self.calls = open(os.path.join(model_dir, "calls"), "a", buffering=1)  # noqa: SIM115

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        time.sleep(0.1)
        self.calls.write("x\n")
        return instances


class Exiter(Echo):
    """Echo; ``parameters["exit"]`` ends the worker process with that code, at once."""

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        if parameters and "exit" in parameters:
            os._exit(int(parameters["exit"]))
        return super().predict(instances, parameters)


class Describe:
    """One string per instance saying how the instances arrived: ``"<kind> <dtype> <writable>
    <values as JSON>"`` (``list - -`` for Python lists). ``array_input``: numeric JSON
    instances arrive as one array."""

    array_input = True

    def load(self, model_dir: str) -> None:
        pass

    def predict(self, instances: Any, parameters: dict[str, Any] | None = None) -> Any:
        import json

        if hasattr(instances, "dtype"):
            head = f"ndarray {instances.dtype.str} {int(instances.flags.writeable)}"
            rows = instances.tolist()
        else:
            head, rows = "list - -", instances
        return [f"{head} {json.dumps(row)}" for row in rows]
