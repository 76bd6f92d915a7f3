"""Progress display for waits: a rich spinner in terminals and notebooks, or a callback."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from endpointkit.spec import EndpointState

__all__ = ["Progress", "progress_display"]

#: True for a spinner, a callable to receive every polled state, or None/False for silence.
Progress = Union[bool, Callable[["EndpointState"], None], None]  # noqa: UP007 - runtime alias on 3.10


@contextmanager
def progress_display(
    progress: Progress, action: str
) -> Iterator[Callable[[EndpointState], None] | None]:
    """Yield the callback `Backend.wait` should call on each poll, and clean up afterwards."""
    if progress is None or progress is False:
        yield None
        return
    if callable(progress):
        yield progress
        return
    from rich.console import Console  # lazy: rich costs ~30 ms to import

    console = Console(stderr=True)
    if not console.is_terminal and not console.is_jupyter:
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
