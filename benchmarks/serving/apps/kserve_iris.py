"""The iris model on KServe's ModelServer: a `kserve.Model` subclass, stock server settings
(one worker, latency logging on), gRPC off. v1 `/v1/models/m:predict` answers
``{"predictions": [...]}``; v2 `/v2/models/m/infer` takes one FP64 input and answers one INT64
output. Runs in the KServe peer's own environment; MODEL_DIR holds model.joblib.

`python kserve_iris.py --http_port PORT` (KServe parses its own options from argv).
"""

from __future__ import annotations

import os
from typing import Any

import joblib
import kserve
import numpy as np
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse


class Iris(kserve.Model):  # type: ignore[misc]
    """scikit-learn `predict` on the instances (v1) or the first input tensor (v2)."""

    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model = joblib.load(os.path.join(model_dir, "model.joblib"))
        self.ready = True

    async def predict(
        self,
        payload: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        if isinstance(payload, InferRequest):
            out = self.model.predict(payload.inputs[0].as_numpy())
            tensor = InferOutput(name="output-0", shape=list(out.shape), datatype="INT64")
            tensor.set_data_from_numpy(out.astype(np.int64), binary_data=False)
            # KServe wants a string id; echo the request's (a fresh uuid would vary the body)
            return InferResponse(
                response_id=payload.id or "0", model_name=self.name, infer_outputs=[tensor]
            )
        return {"predictions": self.model.predict(np.asarray(payload["instances"])).tolist()}


if __name__ == "__main__":
    kserve.ModelServer(workers=1, enable_grpc=False).start([Iris("m", os.environ["MODEL_DIR"])])
