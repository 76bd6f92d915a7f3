"""Reference pages generated from the code: the CLI from its parser, errors from their tree.

Used by `hooks.py` at every `mkdocs build` (the pages are never written to docs/) and by
tests/docs; `python docs/scripts/reference.py cli|errors` prints one page.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import os
import pkgutil
import re
import sys
from collections.abc import Callable, Iterator

#: How wide argparse wraps `--help` text in the pages (it reads COLUMNS).
HELP_COLUMNS = "100"
#: Commands whose arguments go to another parser (`endpointkit serve --help`, ...).
PASSTHROUGH_HELP = {"serve": ["serve", "--help"], "local": ["local", "--help"]}


# -- the CLI ------------------------------------------------------------------------------------


def _escape(text: str) -> str:
    """Text for a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ").strip()


@contextlib.contextmanager
def _columns() -> Iterator[None]:
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise RuntimeError("endpointkit's parser has no subcommands: docs/scripts/reference.py")


def _command_help(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {choice.dest: choice.help or "" for choice in action._choices_actions}
    return {}


def _flag(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    names = ", ".join(action.option_strings)
    if action.nargs == 0:
        return f"`{names}`"
    metavar = action.metavar or (
        "{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper()
    )
    return f"`{names} {metavar}`"


def _describe(action: argparse.Action) -> str:
    text = (action.help or "").replace("%%", "%")
    if action.choices and not action.option_strings:  # options show theirs in the flag column
        text += f" (one of: {', '.join(map(str, action.choices))})"
    if action.nargs in ("+", "*"):
        text += " (one or more)" if action.nargs == "+" else " (any number)"
    if isinstance(action, argparse._AppendAction):
        text += " (repeatable)" if "repeatable" not in text else ""
    default = action.default
    if (
        action.option_strings
        and action.nargs != 0
        and default not in (None, [], argparse.SUPPRESS)
        and "default" not in text
    ):
        text += f" (default: `{default}`)"
    return _escape(text)


def _groups(parser: argparse.ArgumentParser) -> list[tuple[str, list[str]]]:
    """(title, table rows) of each argument group that has arguments, -h left out."""
    groups = []
    for group in parser._action_groups:
        actions = [
            a
            for a in group._group_actions
            if a.help is not argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)
        ]
        if actions:
            groups.append(
                (group.title or "", [f"| {_flag(a)} | {_describe(a)} |" for a in actions])
            )
    return groups


def _table(title: str, rows: list[str]) -> list[str]:
    return [f"**{title}**", "", "| argument | meaning |", "| --- | --- |", *rows, ""]


def _common_groups(parsers: list[argparse.ArgumentParser]) -> dict[str, list[str]]:
    """Groups that most commands share word for word: documented once, at the top."""
    seen: dict[tuple[str, tuple[str, ...]], int] = {}
    for parser in parsers:
        for title, rows in _groups(parser):
            seen[(title, tuple(rows))] = seen.get((title, tuple(rows)), 0) + 1
    return {title: list(rows) for (title, rows), n in seen.items() if n > len(parsers) // 2}


def _captured_help(argv: list[str]) -> str:
    """`endpointkit ARGV` run in-process (its --help goes to another parser)."""
    from endpointkit.cli import main

    out = io.StringIO()
    with _columns(), contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(argv)
    text = out.getvalue().strip()
    if not text:
        raise RuntimeError(f"'endpointkit {' '.join(argv)}' printed no help")
    return text


def cli_markdown() -> str:
    """docs/reference/cli.md: every command, its usage and arguments, from `build_parser()`."""
    from endpointkit.cli import build_parser

    with _columns():
        parser = build_parser()
        top_usage = parser.format_usage().strip()
    commands = _subcommands(parser)
    summaries = _command_help(parser)
    lines = [
        "# CLI reference",
        "",
        "<!-- Generated by docs/scripts/reference.py from endpointkit.cli.build_parser(); "
        "do not edit. -->",
        "",
        parser.description or "",
        "",
        "```text",
        top_usage,
        "```",
        "",
        "Every command prints one line to stderr on an error (`--debug` for the traceback) and "
        "exits with a code from [Errors and exit codes](errors.md#exit-codes).",
        "",
        "| command | what it does |",
        "| --- | --- |",
    ]
    lines += [f"| [`{name}`](#{name}) | {_escape(summaries.get(name, ''))} |" for name in commands]
    lines.append("")
    own = {n: p for n, p in commands.items() if n not in PASSTHROUGH_HELP}
    common = _common_groups(list(own.values()))
    if common:
        lines += [
            "## Common options",
            "",
            "Most commands also take these (each command's section says which):",
            "",
        ]
        for title, rows in common.items():
            lines += _table(title, rows)
    for name, sub in commands.items():
        lines += [f"## {name}", ""]
        if name in PASSTHROUGH_HELP:
            lines += [
                _escape(summaries.get(name, "")),
                "",
                "```text",
                _captured_help(PASSTHROUGH_HELP[name]),
                "```",
                "",
            ]
            continue
        with _columns():
            usage = sub.format_usage().strip()
        lines += [sub.description or "", "", "```text", usage, "```", ""]
        shared = []
        for title, rows in _groups(sub):
            if common.get(title) == rows:
                shared.append(title)
            else:
                lines += _table(title, rows)
        if shared:
            names = " and ".join(f"*{title}*" for title in shared)
            lines += [f"Plus the common {names} options ([Common options](#common-options)).", ""]
    return "\n".join(lines)


# -- errors and exit codes ----------------------------------------------------------------------


def exit_code_table(epilog: str) -> list[tuple[str, str]]:
    """(code, meaning) rows from the parser's 'exit codes:' epilog."""
    rows: list[tuple[str, str]] = []
    for line in epilog.splitlines():
        match = re.match(r"^\s{1,4}(\d+)\s+(.*)$", line)
        if match:
            rows.append((match.group(1), match.group(2).strip()))
        elif rows and line.strip() and not line.strip().endswith(":"):
            code, text = rows[-1]
            rows[-1] = (code, f"{text} {line.strip()}")
    return rows


def _exit_code_function() -> Callable[[BaseException], int]:
    """The CLI's error -> exit code mapping, wherever `endpointkit.cli` keeps it."""
    cli = importlib.import_module("endpointkit.cli")
    modules = [cli]
    if hasattr(cli, "__path__"):  # a package: look in its modules too
        modules += [
            importlib.import_module(f"endpointkit.cli.{info.name}")
            for info in pkgutil.iter_modules(cli.__path__)
            if info.name != "__main__"  # importing it runs the CLI
        ]
    for module in modules:
        for name in ("exit_code", "_exit_code"):
            function = getattr(module, name, None)
            if callable(function):
                return function  # type: ignore[no-any-return]
    raise RuntimeError(
        "endpointkit.cli no longer has an exit_code/_exit_code function: update "
        "docs/scripts/reference.py so the errors page keeps its exit-code column"
    )


def _error_classes() -> list[type[BaseException]]:
    errors = importlib.import_module("endpointkit.errors")
    return [getattr(errors, name) for name in errors.__all__]


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return _escape(doc.split("\n\n")[0])


def _tree(root: type, classes: list[type], depth: int = 0) -> Iterator[tuple[int, type]]:
    yield depth, root
    for child in classes:
        if root in child.__bases__:
            yield from _tree(child, classes, depth + 1)


def errors_markdown() -> str:
    """docs/reference/errors.md: the exception tree with each error's exit code."""
    from endpointkit.cli import build_parser

    errors = importlib.import_module("endpointkit.errors")
    root = errors.EndpointKitError
    classes = _error_classes()
    exit_code = _exit_code_function()
    codes = exit_code_table(build_parser().epilog or "")
    if not codes:
        raise RuntimeError("endpointkit's parser lost its 'exit codes:' epilog")
    lines = [
        "# Errors and exit codes",
        "",
        "<!-- Generated by docs/scripts/reference.py from endpointkit.errors and "
        "endpointkit.cli; do not edit. -->",
        "",
        "Everything endpointkit raises on purpose is an `EndpointKitError` from "
        "`endpointkit.errors` (also importable from `endpointkit`). Each carries what it knows "
        "of where it happened (`backend`, `operation`, `endpoint`, `version`, the platform's "
        "own `provider_code`) and a `hint` saying what to do next; `context()` returns all of "
        "it as a dict, which is what `--output json` prints on stderr. Adapters translate the "
        "cloud SDKs' exceptions into these at one boundary each: a boto3 or Google exception "
        "never reaches your code.",
        "",
        "Only `Retryable` errors are retried, with jittered backoff, by endpointkit itself; "
        "when one reaches you, the retries are spent.",
        "",
        "## The tree",
        "",
        "| error | also a | CLI exit code | what it means |",
        "| --- | --- | --- | --- |",
    ]
    for depth, cls in _tree(root, classes):
        indent = "&nbsp;&nbsp;&nbsp;&nbsp;" * depth
        builtins = [b.__name__ for b in cls.__mro__[1:] if b.__module__ == "builtins"]
        builtins = [b for b in builtins if b not in ("Exception", "BaseException", "object")]
        code = exit_code(cls.__new__(cls))
        lines.append(
            f"| {indent}[`{cls.__name__}`](#endpointkit.errors.{cls.__name__}) "
            f"| {', '.join(f'`{b}`' for b in builtins)} | {code} | {_summary(cls)} |"
        )
    warnings = [cls for cls in classes if issubclass(cls, Warning)]
    if warnings:
        lines += ["", "## Warnings", "", "| warning | what it means |", "| --- | --- |"]
        lines += [
            f"| [`{cls.__name__}`](#endpointkit.errors.{cls.__name__}) | {_summary(cls)} |"
            for cls in warnings
        ]
    missing = [cls.__name__ for cls in classes if not issubclass(cls, root) and cls not in warnings]
    if missing:
        raise RuntimeError(f"errors outside the EndpointKitError tree: {missing}")
    lines += [
        "",
        "## Exit codes",
        "",
        "From `endpointkit --help`:",
        "",
        "| code | meaning |",
        "| --- | --- |",
    ]
    lines += [f"| {code} | {_escape(text)} |" for code, text in codes]
    lines += [
        "",
        "## Reference",
        "",
    ]
    for _, cls in _tree(root, classes):
        lines += [f"::: endpointkit.errors.{cls.__name__}", "    options:"]
        lines.append("      heading_level: 3")
        if cls is not root and "__init__" not in vars(cls):
            lines.append("      show_signature: false")  # the root's, shown once above
        lines.append("")
    for cls in warnings:
        lines += [f"::: endpointkit.errors.{cls.__name__}", "    options:"]
        lines += ["      heading_level: 3", "      show_signature: false", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    pages = {"cli": cli_markdown, "errors": errors_markdown}
    if len(sys.argv) != 2 or sys.argv[1] not in pages:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(pages)}")
    print(pages[sys.argv[1]]())
