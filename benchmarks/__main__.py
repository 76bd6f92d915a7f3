"""`python -m benchmarks NAME [ARGS...]` (or `nox -s bench -- NAME`): run one benchmark.

Each benchmark is a module or package `benchmarks.NAME` with `main(argv: list[str]) -> int`.
Results are written to benchmarks/results/. Every benchmark measures ratios against a floor
or a peer in the same run; none is a pass/fail test.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = available()
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: python -m benchmarks NAME [ARGS...]\navailable: {', '.join(names)}")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in names:
        print(f"no benchmark {name!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"benchmarks.{name}")
    return int(module.main(rest))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
