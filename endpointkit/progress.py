"""Progress display for waits: a rich spinner in terminals and notebooks, or a callback.

`progress=None` (the default everywhere) means: show a spinner when someone is watching (stderr
is a terminal, or the code runs in a Jupyter notebook) and stay silent otherwise (pipes, CI
logs, files). `True` always reports (plain lines where no spinner can be drawn), `False`
never does, and a callable receives every polled state. `default_progress` changes what None
means for a block of code; the CLI uses it to keep `--output json` quiet.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from endpointkit.state import EndpointState

__all__ = ["Progress", "default_progress", "in_notebook", "progress_display"]

#: None for the default (a spinner when watched), True to always report, False for silence,
#: or a callable to receive every polled state.
Progress = Union[bool, Callable[["EndpointState"], None], None]  # noqa: UP007 - runtime alias on 3.10

_defaults: list[Progress] = []


@contextmanager
def default_progress(progress: Progress) -> Iterator[None]:
    """Within the block, `progress=None` means `progress` (None keeps the automatic choice)."""
    _defaults.append(progress)
    try:
        yield
    finally:
        _defaults.pop()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (checked without importing IPython)."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    if get_ipython is None:
        return False
    try:
        shell = get_ipython()
    except Exception:  # a half-initialised IPython must not break a deploy
        return False
    return type(shell).__name__ in ("ZMQInteractiveShell", "Shell")  # Jupyter, Colab


def _watched() -> bool:
    try:
        return sys.stderr.isatty() or in_notebook()
    except (AttributeError, ValueError):  # stderr replaced or closed
        return False


@contextmanager
def progress_display(
    progress: Progress, action: str
) -> Iterator[Callable[[EndpointState], None] | None]:
    """Yield the callback `Backend.wait` should call on each poll, and clean up afterwards."""
    if progress is None and _defaults:
        progress = _defaults[-1]
    if progress is None:
        progress = _watched()
    if progress is False:
        yield None
        return
    if callable(progress):
        yield progress
        return
    from rich.console import Console  # lazy: rich costs ~30 ms to import

    console = Console(stderr=True)
    live = console.is_terminal or (
        console.is_jupyter and importlib.util.find_spec("ipywidgets") is not None
    )
    if not live:  # rich needs ipywidgets to redraw in a notebook: plain lines instead
        last: list[str] = []

        def plain(state: EndpointState) -> None:
            line = f"{action}: {state.name} is {state.status}"
            if not last or last[-1] != line:
                last.append(line)
                print(line, file=sys.stderr)

        yield plain
        return
    started = time.monotonic()
    with console.status(f"{action}...") as status:

        def spin(state: EndpointState) -> None:
            elapsed = time.monotonic() - started
            status.update(
                f"{action}: [bold]{state.name}[/bold] is {state.status} ({elapsed:.0f} s)"
            )

        yield spin
