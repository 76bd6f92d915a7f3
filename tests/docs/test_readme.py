"""Every code block in the README runs as written on the default (local) backend.

A block runs unless the line before its fence says otherwise:
`<!-- readme: parse -- WHY -->` (checked for syntax only: it needs a cloud account, or runs
for minutes, and WHY names where it is exercised) or `<!-- readme: skip -- WHY -->` (the
README's own commands that set up a machine or run whole sessions, which CI runs itself).
Python blocks run in order in one namespace, as a reader pastes them into one session; bash
blocks run their `endpointkit ...` lines; a YAML block that names its file is written there.
Everything runs in a fresh folder with the quickstart's iris models in `./models`.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARK = re.compile(r"<!--\s*readme:\s*(parse|skip)\s*--\s*(.+?)\s*-->")

pytestmark = pytest.mark.slow  # real serving processes behind a local gateway


@dataclass
class Block:
    line: int
    language: str
    code: str
    mode: str  # "run", "parse" or "skip"
    why: str = ""


def blocks(text: str) -> list[Block]:
    found: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = re.match(r"^(\s*)```(\w*)\s*$", lines[index])
        if not match:
            index += 1
            continue
        indent, language = match.groups()
        start = index
        index += 1
        body: list[str] = []
        while not lines[index].strip().startswith("```"):
            body.append(lines[index][len(indent) :])
            index += 1
        index += 1
        previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        mark = MARK.search(previous)
        mode, why = (mark.group(1), mark.group(2)) if mark else ("run", "")
        found.append(Block(start + 1, language, "\n".join(body) + "\n", mode, why))
    return found


ALL = blocks(README.read_text())


def test_every_block_is_run_or_says_why_not() -> None:
    assert ALL, "the README has no code blocks?"
    for block in ALL:
        assert block.language in ("bash", "python", "yaml"), f"README:{block.line}: tag it"
        if block.mode != "run":
            assert len(block.why) > 10, f"README:{block.line}: say why it does not run"
        if block.language == "bash" and block.mode == "run":
            for line in _commands(block.code):
                assert line.startswith("endpointkit "), f"README:{block.line}: {line!r}"


def test_blocks_that_are_not_run_parse() -> None:
    for block in ALL:
        if block.language == "python":
            ast.parse(block.code, filename=f"README.md:{block.line}")
        elif block.language == "yaml":
            yaml.safe_load(block.code)


def _commands(code: str) -> Iterator[str]:
    joined = code.replace("\\\n", " ")
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            yield line


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    sys.path.insert(0, str(ROOT / "examples" / "quickstart"))
    try:
        from train import train  # the quickstart's own models

        train(tmp_path / "models")
    finally:
        sys.path.remove(str(ROOT / "examples" / "quickstart"))
    home = tmp_path / "endpointkit-home"
    monkeypatch.setenv("ENDPOINTKIT_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        subprocess.run(
            [sys.executable, "-m", "endpointkit.cli", "local", "stop"],
            env={**os.environ, "ENDPOINTKIT_HOME": str(home)},
            capture_output=True,
            timeout=120,
            check=False,
        )


def test_the_readme_runs_as_written(workspace: Path) -> None:
    namespace: dict[str, object] = {"__name__": "readme"}
    cli = [sys.executable, "-m", "endpointkit.cli"]
    for block in ALL:
        if block.mode != "run":
            continue
        where = f"README.md:{block.line}"
        if block.language == "python":
            exec(compile(block.code, where, "exec"), namespace)  # the README's own code
        elif block.language == "yaml":
            name = re.match(r"#\s*(\S+\.ya?ml)", block.code)
            assert name, f"{where}: a YAML block that runs names its file in a first comment"
            (workspace / name.group(1)).write_text(block.code)
        else:
            for command in _commands(block.code):
                done = subprocess.run(
                    [*cli, *shlex.split(command)[1:]],
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
                assert done.returncode == 0, f"{where}: {command}\n{done.stdout}{done.stderr}"
