"""Progress is on by default in terminals and notebooks, off in pipes and for JSON output."""

from __future__ import annotations

import io
import sys
import types

import pytest

from endpointkit import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def callback(value: progress.Progress) -> object:
    with progress.progress_display(value, "deploy v2") as found:
        return found


def test_default_shows_progress_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert callback(None) is not None
    assert callback(False) is None


def test_default_is_silent_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert callback(None) is None
    assert callback(True) is not None  # asked for explicitly: plain lines


def test_default_shows_progress_in_a_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())

    class ZMQInteractiveShell:
        pass

    fake = types.ModuleType("IPython")
    fake.get_ipython = ZMQInteractiveShell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert progress.in_notebook()
    assert callback(None) is not None


def test_the_default_can_be_turned_off_for_a_whole_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stderr", Terminal())
    with progress.default_progress(False):
        assert callback(None) is None
    assert callback(None) is not None
