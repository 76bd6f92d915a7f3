"""MkDocs hooks: add the generated pages and the executed notebook to the site.

- `reference/cli.md` and `reference/errors.md` come from the code at every build
  (`reference.py` beside this file), so they cannot drift from the parser or the error tree.
- `notebooks/quickstart.ipynb` is the executed notebook that `docs/scripts/notebook.py`
  (the `docs` nox session runs it first) writes to `build/docs/`; without it the build warns
  (and so fails under `--strict`) and shows the committed notebook, which has no outputs.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from notebook import EXECUTED, NOTEBOOK  # noqa: E402
from reference import cli_markdown, errors_markdown  # noqa: E402

log = logging.getLogger("mkdocs.hooks.endpointkit")

GENERATED = {"reference/cli.md": cli_markdown, "reference/errors.md": errors_markdown}
NOTEBOOK_PAGE = "notebooks/quickstart.ipynb"


@event_priority(100)  # before mkdocs-jupyter's on_files, which picks up the .ipynb
def on_files(files: Files, config: Any) -> Files:
    for path, render in GENERATED.items():
        files.append(File.generated(config, path, content=render()))
    if EXECUTED.exists():
        source = EXECUTED
    else:
        log.warning(
            "%s has not been executed: run 'python docs/scripts/notebook.py' (or "
            "'nox -s docs'); the site shows it without outputs",
            NOTEBOOK.relative_to(ROOT),
        )
        source = NOTEBOOK
    # File(path, src_dir, ...) reads src_dir/path: both notebooks are in a notebooks/ folder.
    src_dir = str(source.parent.parent)
    files.append(File(NOTEBOOK_PAGE, src_dir, config["site_dir"], config["use_directory_urls"]))
    return files
