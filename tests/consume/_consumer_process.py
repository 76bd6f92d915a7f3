"""`endpointkit consume ...` in a child process, against a mock endpoint 'echo' whose every
answer takes LATENCY_S seconds (the CLI arguments follow on the command line)."""

from __future__ import annotations

import os
import sys

from endpointkit.cli import main
from endpointkit.testing import mock_endpoints

if __name__ == "__main__":
    with mock_endpoints() as mock:
        mock.add_endpoint("echo", {"v1": lambda rows: list(rows)})
        mock.inject("latency", seconds=float(os.environ.get("LATENCY_S", "0.5")), times=None)
        sys.exit(main(sys.argv[1:]))
