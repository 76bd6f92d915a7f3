"""The documentation cannot drift from the code: cheap checks, no site build.

The build itself (`mkdocs build --strict`, with the notebook executed) is the `docs` nox
session; these run with the tests and need none of its packages.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

import endpointkit

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
NOTEBOOKS = ROOT / "examples" / "notebooks"
DIRECTIVE = re.compile(r"^:::\s+([\w.]+)\s*$", re.MULTILINE)


def _reference() -> ModuleType:
    sys.path.insert(0, str(DOCS / "scripts"))
    try:
        return importlib.import_module("reference")
    finally:
        sys.path.remove(str(DOCS / "scripts"))


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    return _reference()


@pytest.fixture(scope="module")
def errors_page(reference: ModuleType) -> str:
    return str(reference.errors_markdown())


@pytest.fixture(scope="module")
def cli_page(reference: ModuleType) -> str:
    return str(reference.cli_markdown())


def _resolve(path: str) -> Any:
    """The object a `::: dotted.path` directive documents (longest importable module first)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def _pages() -> dict[str, str]:
    return {str(p.relative_to(DOCS)): p.read_text() for p in DOCS.rglob("*.md")}


def test_every_public_name_has_an_api_entry(errors_page: str) -> None:
    documented = [
        _resolve(target)
        for text in [*_pages().values(), errors_page]
        for target in DIRECTIVE.findall(text)
    ]
    missing = [
        name
        for name in endpointkit.__all__
        if name != "__version__"
        and not any(obj is getattr(endpointkit, name) for obj in documented)
    ]
    assert not missing, f"public names with no '::: ...' entry under docs/api/: {missing}"


def test_every_directive_resolves() -> None:
    broken = []
    for page, text in _pages().items():
        for target in DIRECTIVE.findall(text):
            try:
                _resolve(target)
            except (ImportError, AttributeError) as exc:
                broken.append(f"{page}: {target} ({exc})")
    assert not broken, "directives naming code that is gone:\n" + "\n".join(broken)


def test_nav_pages_exist() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    generated = {"reference/cli.md", "reference/errors.md", "notebooks/quickstart.ipynb"}

    def walk(items: list[Any]) -> list[str]:
        paths = []
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            paths += walk(value) if isinstance(value, list) else [value]
        return paths

    nav = walk(config["nav"])
    missing = [p for p in nav if p not in generated and not (DOCS / p).is_file()]
    assert not missing, f"mkdocs.yml nav names missing pages: {missing}"
    unlisted = sorted(set(_pages()) - set(nav))
    assert not unlisted, f"pages not in mkdocs.yml nav: {unlisted}"


def test_cli_page_covers_every_command(cli_page: str) -> None:
    from endpointkit.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    missing = [name for name in commands if f"\n## {name}\n" not in cli_page]
    assert not missing, f"commands missing from the CLI page: {missing}"
    assert "--detailed-exitcode" in cli_page
    assert "ENDPOINTKIT_MODEL_DIR" in cli_page  # `serve --help`, from the server's own parser


def test_errors_page_covers_the_tree_and_exit_codes(errors_page: str, reference: Any) -> None:
    from endpointkit import errors
    from endpointkit.cli import build_parser

    for name in errors.__all__:
        assert f"::: endpointkit.errors.{name}\n" in errors_page, name
    codes = [code for code, _ in reference.exit_code_table(build_parser().epilog or "")]
    assert {"0", "1", "2", "3", "4", "5", "6", "7", "10", "130", "141"} <= set(codes)
    # NotFound -> 3 and RolledBack -> 4, as the CLI maps them
    assert re.search(r"`NotFound`\]\(#[\w.]+\) \|  \| 3 \|", errors_page)
    assert re.search(r"`RolledBack`\]\(#[\w.]+\) \|  \| 4 \|", errors_page)


def test_committed_notebook_matches_its_script_and_has_no_outputs() -> None:
    """`quickstart.ipynb` is `jupytext --sync`ed from `quickstart.py` and carries no outputs
    (the docs session executes it; the executed copy lives in build/docs only)."""
    notebook = json.loads((NOTEBOOKS / "quickstart.ipynb").read_text())
    script = (NOTEBOOKS / "quickstart.py").read_text()
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code
    for cell in code:
        assert cell["outputs"] == []
        assert cell["execution_count"] is None
        assert "".join(cell["source"]).strip() in script, "run 'jupytext --sync' on quickstart.py"
    assert script.count("\n# %%") == len(notebook["cells"])
