"""Readable reprs, rich tables and notebook HTML for states, history, plans and rollouts."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import pytest
from rich.console import Console

import endpointkit as ek
from endpointkit.adapters.mock import MockBackend
from endpointkit.planner import plan
from endpointkit.rollout import RolloutResult
from endpointkit.spec import EndpointSpec
from endpointkit.state import EndpointState, Event, History

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
LOG = "\n".join(f'{{"level":"error","n":{i},"padding":"{"x" * 60}"}}' for i in range(20))


def answer(name: str):  # type: ignore[no-untyped-def]
    return lambda xs: [name] * len(xs)


@pytest.fixture
def endpoint() -> ek.Endpoint:
    backend = MockBackend(seed=1)
    backend.add_endpoint("churn", {"v1": answer("v1"), "v2": answer("v2")}, {"v1": 90, "v2": 10})
    return ek.Endpoint("churn", backend)


def rich_text(renderable: object) -> str:
    console = Console(width=120, record=True, file=None, force_terminal=False)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


def test_endpoint_state_repr_is_short_and_str_is_a_table(endpoint: ek.Endpoint) -> None:
    state = endpoint.status()
    text = repr(state)
    assert len(text) < 200
    assert text == (
        "EndpointState(name='churn', backend='mock', status=InService, traffic={'v1': 90, "
        "'v2': 10}, versions=['v1', 'v2'])"
    )
    table = str(state)
    assert table.splitlines()[0] == "churn on mock: InService"
    assert any(line.split()[:2] == ["v1", "90%"] for line in table.splitlines())


def test_endpoint_state_renders_as_a_rich_table_and_html(endpoint: ek.Endpoint) -> None:
    state = endpoint.status().model_copy(
        update={"failure_reason": f"v3 failed: boom. Last log lines:\n{LOG}"}
    )
    out = rich_text(state)
    assert "churn on mock: InService" in out
    assert "90%" in out
    assert "v2" in out
    assert '"level":"error"' not in out  # the log dump stays out of the table
    page = state._repr_html_()
    assert "<table" in page
    assert "width:90%" in page  # traffic bar
    assert "v3 failed: boom." in page
    assert '"level":"error"' not in page
    assert "<script" not in page


def test_html_escapes_names_and_messages() -> None:
    state = EndpointState(
        name="a", backend="mock", status=ek.Status.FAILED, failure_reason="<script>x</script>"
    )
    page = state._repr_html_()
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_history_prints_one_line_per_event(endpoint: ek.Endpoint) -> None:
    endpoint.set_traffic({"v1": 50, "v2": 50})
    history = endpoint.history()
    assert isinstance(history, History)
    assert isinstance(history, list)
    lines = str(history).splitlines()
    assert len(lines) == len(history)
    assert "traffic" in lines[-1]
    assert "v1=50%, v2=50%" in lines[-1]
    assert repr(history) == str(history)
    page = history._repr_html_()
    assert page.count("<tr>") == len(history) + 1
    assert "traffic" in rich_text(history)


def test_a_long_event_message_is_cut_to_its_first_line() -> None:
    history = History(
        [Event(time=WHEN, endpoint="a", kind="failed", version="v2", message=f"boom.\n{LOG}")]
    )
    assert str(history) == "2026-01-02T03:04:05+00:00  failed     v2  boom."
    assert len(repr(history[0])) < 160
    assert '"level"' not in history._repr_html_()


def test_plan_repr_str_rich_and_html() -> None:
    spec = EndpointSpec.from_dict(
        {"name": "churn", "versions": [{"name": "v1"}, {"name": "v2"}], "traffic": {"v1": 100}}
    )
    the_plan = plan(spec, MockBackend(predictors={"v1": answer("v1"), "v2": answer("v2")}))
    assert repr(the_plan) == "Plan(endpoint='churn', backend='mock', changes=2)"
    assert str(the_plan) == the_plan.diff()
    assert "create endpoint churn" in rich_text(the_plan)
    page = the_plan._repr_html_()
    assert "<table" in page
    assert "create endpoint churn" in page


def test_rollout_result_repr_rich_and_html(endpoint: ek.Endpoint) -> None:
    result = RolloutResult(
        version="v2", steps=[10, 100], probes=20, probe_errors=1, state=endpoint.status()
    )
    assert repr(result) == (
        "RolloutResult(version='v2', steps=[10, 100], probes=20, probe_errors=1, "
        "state=EndpointState(name='churn', backend='mock', status=InService, "
        "traffic={'v1': 90, 'v2': 10}, versions=['v1', 'v2']))"
    )
    out = rich_text(result)
    assert "rollout of v2" in out
    assert "10% -> 100%" in out
    assert "churn on mock" in out
    page = result._repr_html_()
    assert "10% &rarr; 100%" in page
    assert "<table" in page


def test_rendering_never_imports_rich_until_asked() -> None:
    code = (
        "import sys, endpointkit as ek\n"
        "from endpointkit.adapters.mock import MockBackend\n"
        "b = MockBackend(); b.add_endpoint('a', {'v1': lambda xs: xs})\n"
        "ep = ek.Endpoint('a', b)\n"
        "s = ep.status(); repr(s); str(s); s._repr_html_()\n"
        "h = ep.history(); str(h); h._repr_html_()\n"
        "assert 'rich' not in sys.modules, 'rich was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
