"""Execute the quickstart notebook for the site: `python docs/scripts/notebook.py`.

The notebook's source is the jupytext percent script `examples/notebooks/quickstart.py`;
`quickstart.ipynb` beside it is the same notebook without outputs (`jupytext --sync
examples/notebooks/quickstart.py` keeps the two in step, and this script refuses to run when
they differ). It runs the script's cells with nbclient in a fresh kernel of this interpreter, from
`examples/notebooks/`, and writes the executed notebook to `build/docs/notebooks/`, where the
MkDocs hook picks it up. A cell that raises fails the run.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCE = ROOT / "examples" / "notebooks" / "quickstart.py"
NOTEBOOK = SOURCE.with_suffix(".ipynb")
EXECUTED = ROOT / "build" / "docs" / "notebooks" / "quickstart.ipynb"
#: Seconds one cell may run (the rollouts bake for seconds; a stuck cell fails the build).
CELL_TIMEOUT_S = 300


def _cells(notebook: object) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]  # type: ignore[attr-defined]


def _kernel_manager() -> Any:
    """A kernel running this interpreter: a `python3` kernelspec in the user's Jupyter
    folders could point at another Python, one without endpointkit."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = EXECUTED.parent.parent / "kernels" / "python3" / "kernel.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(spec.parent.parent)], ensure_native_kernel=False)
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def main() -> int:
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    notebook = jupytext.read(SOURCE)
    if _cells(notebook) != _cells(nbformat.read(NOTEBOOK, as_version=4)):
        print(
            f"{NOTEBOOK.relative_to(ROOT)} differs from {SOURCE.relative_to(ROOT)}: run "
            f"'jupytext --sync {SOURCE.relative_to(ROOT)}' and commit both.",
            file=sys.stderr,
        )
        return 1
    started = time.perf_counter()
    client = NotebookClient(
        notebook,
        km=_kernel_manager(),
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(SOURCE.parent)}},
    )
    try:
        client.execute()
    finally:
        if client.km is not None and client.km.has_kernel:  # a km we pass in is ours to stop
            client.km.shutdown_kernel()
    EXECUTED.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, EXECUTED)
    print(
        f"executed {NOTEBOOK.relative_to(ROOT)} in {time.perf_counter() - started:.0f} s "
        f"-> {EXECUTED.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
