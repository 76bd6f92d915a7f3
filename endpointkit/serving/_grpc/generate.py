"""Regenerate ``grpc_predict_v2_pb2.py`` / ``.pyi`` from ``grpc_predict_v2.proto``.

    uv run --no-project --with grpcio-tools==1.62.3 python endpointkit/serving/_grpc/generate.py

grpcio-tools is pinned to 1.62.3 (protoc 25, protobuf 4.25 gencode): that gencode carries no
runtime version check, so one checked-in module loads on every protobuf from 4.25 to 7 (a
newer protoc's gencode refuses any runtime older than itself).

The module registers its messages in a private descriptor pool, not the default one: the
messages' full names (``inference.ModelInferRequest``...) are the wire contract and must stay,
and ``tritonclient.grpc`` registers the same names in the default pool, so both in one process
(a test, a notebook that serves and calls) would otherwise fail with "duplicate symbol".
Only the service's method paths travel on the wire, so the private pool changes nothing there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
PROTO = "grpc_predict_v2.proto"
DEFAULT_POOL = "_descriptor_pool.Default().AddSerializedFile("
PRIVATE_POOL = (
    "_descriptor_pool.DescriptorPool()  # private: see generate.py\n"
    "DESCRIPTOR = POOL.AddSerializedFile("
)


def main() -> int:
    """Run protoc, then move the messages to a private pool; returns the exit code."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{HERE}",
            f"--python_out={HERE}",
            f"--pyi_out={HERE}",
            str(HERE / PROTO),
        ],
        check=True,
    )
    module = HERE / "grpc_predict_v2_pb2.py"
    text = module.read_text()
    if text.count("DESCRIPTOR = " + DEFAULT_POOL) != 1:
        print(f"unexpected protoc output in {module}: no default-pool line", file=sys.stderr)
        return 1
    text = text.replace("DESCRIPTOR = " + DEFAULT_POOL, "POOL = " + PRIVATE_POOL)
    module.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
