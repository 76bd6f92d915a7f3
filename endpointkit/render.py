"""One rendering of endpoints, history, plans and rollouts for every place they are shown.

`repr`, `print`, the CLI, rich terminals (`__rich__`) and notebooks (`_repr_html_`) all go
through these functions, so a state looks the same wherever it is printed. Three forms each:
plain text (no dependencies), a rich renderable (rich is imported only when one is asked for:
it costs ~30 ms, and `import endpointkit` must stay light) and escaped HTML.

Long provider messages (a local version's failure reason carries the last lines of its log)
are cut to their first line everywhere; the full text stays on the objects and in JSON output,
and the path of the full log is shown where the backend reports one.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from endpointkit.errors import EndpointKitError
    from endpointkit.planner import Plan
    from endpointkit.rollout import RolloutResult
    from endpointkit.state import EndpointState, Event, VersionState

__all__ = [
    "error_line",
    "event_line",
    "event_message",
    "event_repr",
    "first_line",
    "history_html",
    "history_rich",
    "history_text",
    "plan_html",
    "plan_rich",
    "rollout_html",
    "rollout_rich",
    "rollout_text",
    "state_html",
    "state_repr",
    "state_rich",
    "state_text",
]

_BAR = "#4c8bf5"
# "... failed to load: ValueError: x. Last log lines:" -> the clause that introduced the dump
_INTRO = re.compile(r"(?<=[.!?])\s+[^.!?]*:$")


_PYDANTIC_HEAD = re.compile(r"\d+ validation errors? for \w+$")
_PYDANTIC_MSG = re.compile(r"^  (?:Value error, )?(.*?)(?: \[type=.*)?$")


def _pydantic_errors(lines: Sequence[str]) -> str:
    """pydantic's multi-line error text as `field: message; ...`."""
    found, field = [], ""
    for line in lines:
        if not line.startswith(" "):
            field = line.strip()
        elif not line.startswith("    "):
            match = _PYDANTIC_MSG.match(line)
            message = match.group(1) if match else line.strip()
            found.append(f"{field}: {message}" if field else message)
            field = ""
    return "; ".join(found)


def first_line(text: str | None) -> str:
    """The first line of `text`, without a trailing clause that introduced the lines cut
    (pydantic's validation errors, whose substance follows the first line, are joined)."""
    lines = (text or "").strip().splitlines()
    if not lines:
        return ""
    line = lines[0].rstrip()
    head = _PYDANTIC_HEAD.search(line)
    if head is not None and len(lines) > 1:
        return f"{line[: head.start()]}{_pydantic_errors(lines[1:])}"
    if len(lines) > 1 and line.endswith(":"):
        cut = _INTRO.sub("", line)
        line = cut if cut != line else line[:-1].rstrip()
    return line


def error_line(exc: EndpointKitError) -> str:
    """An error as one line: what happened, the provider code, what to do, where the log is."""
    parts = [first_line(exc.message)]
    if exc.provider_code and exc.provider_code not in parts[0]:
        parts[0] = f"{parts[0]} [{exc.provider_code}]"
    hint = first_line(exc.hint)
    if hint:
        parts.append(hint)
    log = getattr(exc, "log_hint", "") or ""
    if log:
        parts.append(f"full log: {first_line(log)}")
    return " ".join(part for part in parts if part)


# -- endpoint state -----------------------------------------------------------------------------


def _split(shares: dict[str, int] | None) -> str:
    serving = {k: v for k, v in (shares or {}).items() if v > 0}
    return ", ".join(f"{k}={v}%" for k, v in serving.items()) if serving else "no traffic"


def state_repr(state: EndpointState) -> str:
    """One short line: name, backend, status, split and version names."""
    return (
        f"EndpointState(name={state.name!r}, backend={state.backend!r}, status={state.status}, "
        f"traffic={dict(state.traffic.root)!r}, versions={state.version_names!r})"
    )


def _title(state: EndpointState) -> str:
    return f"{state.name} on {state.backend}: {state.status}"


def _health(version: VersionState) -> str:
    healthy = version.details.get("healthy")
    return "" if healthy is None else "healthy" if healthy else "down"


def _replicas(version: VersionState) -> str:
    if version.scaling is not None:
        return version.scaling.describe()
    return "" if version.replicas is None else str(version.replicas)


def _rows(state: EndpointState) -> tuple[list[str], list[list[str]]]:
    columns = ["version", "traffic", "hash", "status", "replicas"]
    with_health = any("healthy" in v.details for v in state.versions)
    if with_health:
        columns.append("health")
    rows = []
    for version in state.versions:
        name = version.name
        if state.shadow and state.shadow.version == name:
            name += f" (shadow {state.shadow.sample_percent}%)"
        row = [
            name,
            f"{state.traffic[version.name]}%",
            version.spec_hash or "",
            str(version.status),
            _replicas(version),
        ]
        if with_health:
            row.append(_health(version))
        rows.append(row)
    return columns, rows


def _footer(state: EndpointState) -> list[str]:
    lines = []
    if state.failure_reason:
        lines.append(f"last failure: {first_line(state.failure_reason)}")
        log = state.details.get("log_hint")
        if log:
            lines.append(f"full log: {log}")
    if state.url:
        lines.append(f"url: {state.url}")
    return lines


def _text_table(columns: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(columns, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([line(columns), *(line(row) for row in rows)])


def state_text(state: EndpointState) -> str:
    """A plain-text table: title, one row per version, last failure, url."""
    columns, rows = _rows(state)
    parts = [_title(state)]
    if rows:
        parts.append(_text_table(columns, rows, right={1}))
    return "\n".join([*parts, *_footer(state)])


def state_rich(state: EndpointState) -> Any:
    """A rich Table (with the failure and url under it) for terminals."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    columns, rows = _rows(state)
    table = Table(title=_title(state), title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in ("traffic", "replicas") else "left")
    for row in rows:
        table.add_row(*row)
    footer = [Text(line) for line in _footer(state)]
    for line in footer:
        if line.plain.startswith("last failure:"):
            line.stylize("yellow", 0, len("last failure:"))
    return Group(table, *footer)


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _bar(share: int) -> str:
    return (
        f'<div style="width:100px;background:#e8eaed;height:8px">'
        f'<div style="background:{_BAR};height:8px;width:{share}%"></div></div>'
    )


def _html_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """`rows` hold HTML already escaped."""
    header = "".join(f"<th>{_esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def state_html(state: EndpointState) -> str:
    """Notebook view: status, one row per version with a traffic bar, health, failure."""
    columns, rows = _rows(state)
    head = [columns[0], columns[1], "", *columns[2:]]
    cells = []
    for version, row in zip(state.versions, rows, strict=True):
        escaped = [_esc(cell) for cell in row]
        escaped[2] = f"<code>{escaped[2]}</code>"
        cells.append([escaped[0], escaped[1], _bar(state.traffic[version.name]), *escaped[2:]])
    footer = "".join(f"<div>{_esc(line)}</div>" for line in _footer(state))
    return (
        f"<div><b>Endpoint {_esc(state.name)}</b> on {_esc(state.backend)}: "
        f"{_esc(state.status)}{_html_table(head, cells)}{footer}</div>"
    )


# -- history ------------------------------------------------------------------------------------


def _change(event: Event) -> str:
    if event.traffic_after is None:
        return ""
    before, after = _split(event.traffic_before), _split(event.traffic_after)
    return "" if before == after else f"{before} -> {after}"


#: Events every backend records with the same structured fields: their wording is made here
#: from those fields, so the same change reads the same on every backend (a backend's own
#: detail stays in `Event.message`, shown in JSON output).
_CANONICAL = {
    "created": "endpoint created",
    "deleted": "endpoint deleted",
    "deployed": "deployed {version}",
    "undeployed": "undeployed {version}",
    "traffic": "traffic",
    "rollback": "rolled back",
}


def event_message(event: Event) -> str:
    """What happened, in words every backend shares, with the split before -> after where
    the event changed it; other events (health, failures, scaling) say it in their own."""
    change = _change(event)
    template = _CANONICAL.get(event.kind)
    if template is None:
        message = first_line(event.message)
        return f"{message}: {change}" if message and change else message or change
    head = template.format(version=event.version or "").rstrip()
    return f"{head}: {change}" if change else head


def event_line(event: Event, version_width: int = 0) -> str:
    """`2026-01-02T03:04:05+00:00  deployed   v2  deployed with 0% of traffic`."""
    when = event.time.isoformat(timespec="seconds")
    version = (event.version or "").ljust(version_width)
    return f"{when}  {event.kind:<10} {version}  {event_message(event)}".rstrip()


def event_repr(event: Event) -> str:
    message = event_message(event)
    if len(message) > 80:
        message = message[:77] + "..."
    version = f", version={event.version!r}" if event.version else ""
    return (
        f"Event(time={event.time.isoformat(timespec='seconds')}, endpoint={event.endpoint!r}, "
        f"kind={event.kind!r}{version}, message={message!r})"
    )


def history_text(events: Sequence[Event]) -> str:
    """One line per event, oldest first."""
    width = max((len(e.version or "") for e in events), default=0)
    return "\n".join(event_line(e, width) for e in events) if events else "no events"


def history_rich(events: Sequence[Event]) -> Any:
    from rich.table import Table

    table = Table(title_justify="left")
    for column in ("time", "event", "version", "message"):
        table.add_column(column)
    for event in events:
        when = event.time.isoformat(timespec="seconds")
        table.add_row(when, event.kind, event.version or "", event_message(event))
    return table


def history_html(events: Sequence[Event]) -> str:
    rows = [
        [
            _esc(e.time.isoformat(timespec="seconds")),
            _esc(e.kind),
            _esc(e.version or ""),
            _esc(event_message(e)),
        ]
        for e in events
    ]
    return _html_table(["time", "event", "version", "message"], rows)


# -- plans and rollouts -------------------------------------------------------------------------


def plan_rich(plan: Plan) -> Any:
    from rich.text import Text

    text = Text()
    for number, line in enumerate(plan.diff().splitlines()):
        style = (
            ""
            if number == 0
            else {"+": "green", "-": "red", "~": "yellow"}.get(line.strip()[:1], "")
        )
        text.append(("\n" if number else "") + line, style=style)
    return text


def plan_html(plan: Plan) -> str:
    from endpointkit.planner import _SYMBOLS

    head = f"<b>Plan for {_esc(plan.endpoint)}</b> on {_esc(plan.backend)}: "
    if not plan.actions:
        return f"<div>{head}no changes, the endpoint matches the spec.</div>"
    rows = [
        [f"<code>{_esc(_SYMBOLS[a.kind])}</code>", _esc(a.kind), _esc(a.summary)]
        for a in plan.actions
    ]
    table = _html_table(["", "action", "what"], rows)
    return f"<div>{head}{len(plan.actions)} change(s){table}</div>"


def _rollout_summary(result: RolloutResult, arrow: str = "->") -> str:
    steps = f" {arrow} ".join(f"{p}%" for p in result.steps) or "no steps"
    errors = f", {result.probe_errors} failed" if result.probe_errors else ""
    probes = f"; {result.probes} probe(s){errors}" if result.probes else ""
    return f"rollout of {result.version}: {steps}{probes}"


def rollout_text(result: RolloutResult) -> str:
    state = f"\n{state_text(result.state)}" if result.state is not None else ""
    return _rollout_summary(result) + state


def rollout_rich(result: RolloutResult) -> Any:
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = [Text(_rollout_summary(result))]
    if result.state is not None:
        parts.append(state_rich(result.state))
    return Group(*parts)


def rollout_html(result: RolloutResult) -> str:
    summary = _esc(_rollout_summary(result, arrow="\x00")).replace("\x00", "&rarr;")
    state = state_html(result.state) if result.state is not None else ""
    return f"<div><b>{summary}</b>{state}</div>"
