"""Desired spec vs live endpoint -> an ordered Plan -> apply. Idempotent.

The order never drops traffic: versions are deployed (at 0%) and scaled up before traffic moves
to them, a shadow that must serve live traffic is cleared before the split changes, and versions
are scaled down or undeployed only after traffic has moved away. A second `apply` of the same
spec is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from endpointkit.adapters.base import Backend, Capability
from endpointkit.adapters.registry import get_backend
from endpointkit.endpoint import DEFAULT_TIMEOUT_S, Endpoint
from endpointkit.errors import NotFound, ValidationError
from endpointkit.progress import Progress, progress_display
from endpointkit.spec import EndpointSpec, Scaling, Shadow, TrafficSplit, VersionSpec
from endpointkit.state import EndpointState, Status

__all__ = ["Action", "Plan", "apply", "destroy", "plan", "plan_destroy"]

T = TypeVar("T")
ActionKind = Literal["create", "deploy", "scale", "traffic", "shadow", "undeploy", "delete"]


@dataclass(frozen=True)
class Action:
    """One step of a plan."""

    kind: ActionKind
    summary: str
    version: VersionSpec | None = None
    version_name: str | None = None
    traffic: TrafficSplit | None = None
    shadow: Shadow | None = None
    scaling: Scaling | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.kind,
            "summary": self.summary,
            "version": self.version_name,
            "traffic": dict(self.traffic.root) if self.traffic is not None else None,
            "shadow": self.shadow.model_dump() if self.shadow is not None else None,
            "scaling": self.scaling.model_dump(mode="json") if self.scaling is not None else None,
        }


_SYMBOLS: dict[ActionKind, str] = {
    "create": "+",
    "deploy": "+",
    "scale": "~",
    "traffic": "~",
    "shadow": "~",
    "undeploy": "-",
    "delete": "-",
}


@dataclass
class Plan:
    """Ordered actions that take `endpoint` from its live state to the spec."""

    endpoint: str
    backend: str
    actions: list[Action] = field(default_factory=list)
    current: EndpointState | None = None
    #: The spec's backend settings (region, project, ...), so `apply(plan)` without a backend
    #: instance reaches the same place `plan` looked at. Hidden: they may hold credentials.
    settings: dict[str, Any] = field(default_factory=dict, repr=False)

    def __bool__(self) -> bool:
        return bool(self.actions)

    def diff(self) -> str:
        """Human-readable diff, one line per action (Terraform-style symbols)."""
        head = f"endpoint {self.endpoint} ({self.backend})"
        if not self.actions:
            return f"{head}: no changes, the endpoint matches the spec."
        lines = [f"{head}: {len(self.actions)} change(s)"]
        lines += [f"  {_SYMBOLS[a.kind]} {a.summary}" for a in self.actions]
        return "\n".join(lines)

    def __repr__(self) -> str:
        changes = len(self.actions)
        return f"Plan(endpoint={self.endpoint!r}, backend={self.backend!r}, changes={changes})"

    def __str__(self) -> str:
        return self.diff()

    def __rich__(self) -> Any:
        from endpointkit.render import plan_rich

        return plan_rich(self)

    def _repr_html_(self) -> str:
        from endpointkit.render import plan_html

        return plan_html(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "backend": self.backend,
            "changes": len(self.actions),
            "actions": [a.to_dict() for a in self.actions],
        }


def _fmt_split(split: TrafficSplit) -> str:
    serving = split.serving()
    return ", ".join(f"{k}={v}%" for k, v in serving.items()) if serving else "no traffic"


def _fmt_shadow(shadow: Shadow | None) -> str:
    return f"{shadow.version} at {shadow.sample_percent}%" if shadow else "none"


def _backend_for(spec: EndpointSpec, backend: Backend | str | None) -> Backend:
    if isinstance(backend, Backend):
        return backend
    return get_backend(backend or spec.backend, spec.settings)


def _live(backend: Backend, name: str) -> EndpointState | None:
    try:
        return backend.get(name)
    except NotFound:
        return None


_BUSY = (Status.CREATING, Status.UPDATING, Status.DELETING)


def plan(spec: EndpointSpec, backend: Backend | str | None = None) -> Plan:
    """Compare `spec` with the live endpoint and return the actions that reconcile them.

    Raises ValidationError if a live version's name is reused for different content
    (versions are immutable).
    """
    target = _backend_for(spec, backend)
    current = _live(target, spec.name)
    result = Plan(
        endpoint=spec.name, backend=target.name, current=current, settings=dict(spec.settings)
    )
    actions = result.actions
    desired = spec.traffic_split
    by_name = {v.name: v for v in spec.versions}

    if current is not None and current.status is Status.FAILED:
        # A failed endpoint serves nothing and (on SageMaker) accepts only delete.
        actions.append(
            Action(
                "delete",
                f"delete endpoint {spec.name} (Failed: {current.failure_reason or 'no reason'})",
            )
        )
        current = None

    if current is None:
        first = _first_version(spec)
        actions.append(
            Action(
                "create",
                f"create endpoint {spec.name} with {first.name} ({first.spec_hash}) at 100%",
                version=first,
                version_name=first.name,
            )
        )
        live_names = [first.name]
        live_split = TrafficSplit({first.name: 100})
        live_shadow: Shadow | None = None
    else:
        _check_immutable(spec, current)
        live_names = current.version_names
        live_split = current.traffic
        live_shadow = current.shadow

    for version in spec.versions:
        if version.name not in live_names:
            actions.append(
                Action(
                    "deploy",
                    f"deploy {version.name} ({version.spec_hash}) at 0%",
                    version=version,
                    version_name=version.name,
                )
            )
    scale_up, scale_down = _scale_actions(spec, target, current)
    actions += scale_up
    shadow_changes = spec.shadow != live_shadow
    if shadow_changes and live_shadow is not None:
        actions.append(Action("shadow", f"shadow: {_fmt_shadow(live_shadow)} -> none"))
        live_shadow = None
    all_names = list(dict.fromkeys([*live_names, *by_name]))
    full = TrafficSplit({**dict.fromkeys(all_names, 0), **desired.root} if desired else {})
    if not full.same_as(live_split) or bool(full) != bool(live_split):
        actions.append(
            Action(
                "traffic",
                f"traffic: {_fmt_split(live_split)} -> {_fmt_split(full)}",
                traffic=TrafficSplit({k: v for k, v in full.root.items() if k in by_name})
                if desired
                else TrafficSplit({}),
            )
        )
    if spec.shadow != live_shadow and spec.shadow is not None:
        actions.append(
            Action(
                "shadow",
                f"shadow: {_fmt_shadow(live_shadow)} -> {_fmt_shadow(spec.shadow)}",
                shadow=spec.shadow,
            )
        )
    actions += scale_down
    for name in live_names:
        if name not in by_name:
            actions.append(Action("undeploy", f"undeploy {name}", version_name=name))
    return result


def _scale_actions(
    spec: EndpointSpec, backend: Backend, current: EndpointState | None
) -> tuple[list[Action], list[Action]]:
    """In-place scaling of live versions whose replicas or autoscaling changed in the spec:
    (scale-ups, which run before traffic moves; scale-downs, which run after)."""
    if current is None:
        return [], []
    held_now = backend.live_scaling(current)
    ups: list[Action] = []
    downs: list[Action] = []
    for index, version in enumerate(spec.versions):
        wanted = version.scaling
        have = held_now.get(version.name)
        if wanted is None or have is None or have == backend.held_scaling(wanted):
            continue
        if Capability.SCALING not in backend.capabilities:
            raise ValidationError(
                f"versions[{index}] {version.name!r}: the {backend.name} backend cannot change "
                f"a live version's replicas ({have.describe()} -> {wanted.describe()}).",
                hint="Give the version a new name and shift traffic to it.",
                endpoint=spec.name,
                version=version.name,
            )
        action = Action(
            "scale",
            f"scale {version.name}: {have.describe()} -> {wanted.describe()}",
            version_name=version.name,
            scaling=wanted,
        )
        (ups if wanted.min_replicas >= have.min_replicas else downs).append(action)
    return ups, downs


def _first_version(spec: EndpointSpec) -> VersionSpec:
    """The version to create the endpoint with: the one that will serve the most traffic."""
    split = spec.traffic_split
    return max(spec.versions, key=lambda v: (split[v.name], -spec.versions.index(v)))


def _check_immutable(spec: EndpointSpec, current: EndpointState) -> None:
    for index, version in enumerate(spec.versions):
        live = current.version(version.name)
        if live is not None and live.spec_hash and live.spec_hash != version.spec_hash:
            raise ValidationError(
                f"versions[{index}] {version.name!r} differs from the version of that name "
                f"deployed on {spec.name!r} (hash {version.spec_hash}, live {live.spec_hash}).",
                hint="Versions are immutable: give the changed version a new name and shift "
                "traffic to it.",
                endpoint=spec.name,
                version=version.name,
            )


def _need(value: T | None) -> T:
    if value is None:
        raise ValueError("malformed plan action: a required field is missing")
    return value


def plan_destroy(name: str, backend: Backend) -> Plan:
    """The plan that deletes endpoint `name` (empty if it does not exist)."""
    current = _live(backend, name)
    result = Plan(endpoint=name, backend=backend.name, current=current)
    if current is not None:
        versions = ", ".join(current.version_names) or "no versions"
        result.actions.append(Action("delete", f"delete endpoint {name} ({versions})"))
    return result


@dataclass
class ApplyResult:
    """What apply did and where it left the endpoint (None after a delete)."""

    plan: Plan
    state: EndpointState | None


def apply(
    spec_or_plan: EndpointSpec | Plan,
    backend: Backend | str | None = None,
    *,
    spec: EndpointSpec | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: Progress = None,
    tags: Mapping[str, str] | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> ApplyResult:
    """Execute the plan for a spec (or a Plan made earlier), waiting after each step.

    Stops at the first failure, leaving the endpoint serving; running apply again continues
    from wherever the endpoint is. `on_plan` is called once with the plan that runs: after a
    change still running is waited out, that is a new plan from where it ended.
    """
    if isinstance(spec_or_plan, EndpointSpec):
        spec = spec_or_plan
        target = _backend_for(spec, backend)
        the_plan = plan(spec, target)
    else:
        the_plan = spec_or_plan
        target = (
            backend
            if isinstance(backend, Backend)
            else get_backend(the_plan.backend, the_plan.settings)
        )
    busy = the_plan.current is not None and the_plan.current.status in _BUSY
    if busy and spec is not None:
        # An earlier apply was interrupted while a change was still running: let it finish,
        # then plan again from where it ended.
        with progress_display(progress, "waiting for the previous change") as callback:
            if the_plan.current is not None and the_plan.current.status is Status.DELETING:
                target.wait_deleted(the_plan.endpoint, timeout=timeout)
            else:
                target.wait(the_plan.endpoint, timeout=timeout, progress=callback)
        the_plan = plan(spec, target)
    if on_plan is not None:
        on_plan(the_plan)
    handle = Endpoint(the_plan.endpoint, target)
    state: EndpointState | None = the_plan.current
    options: dict[str, Any] = {"timeout": timeout, "progress": progress}
    for action in the_plan.actions:
        if action.kind == "delete":
            handle.delete()
            target.wait_deleted(the_plan.endpoint, timeout=timeout)
            state = None
        elif action.kind == "create":
            all_tags = {**(spec.tags if spec else {}), **dict(tags or {})}
            handle = Endpoint.create(
                the_plan.endpoint, _need(action.version), backend=target, tags=all_tags, **options
            )
            state = handle.status()
        elif action.kind == "deploy":
            state = handle.deploy(_need(action.version), 0, **options)
        elif action.kind == "scale":
            scaling = _need(action.scaling)
            state = handle.scale(
                _need(action.version_name),
                scaling.min_replicas,
                scaling.max_replicas,
                autoscaling=scaling.autoscaling or False,
                **options,
            )
        elif action.kind == "traffic":
            state = handle.set_traffic(_need(action.traffic), **options)
        elif action.kind == "shadow":
            shadow = action.shadow
            state = handle.set_shadow(
                shadow.version if shadow else None,
                shadow.sample_percent if shadow else 100,
                **options,
            )
        elif action.kind == "undeploy":
            state = handle.undeploy(_need(action.version_name), **options)
    return ApplyResult(plan=the_plan, state=state)


def destroy(name: str, backend: Backend, *, timeout: float = DEFAULT_TIMEOUT_S) -> ApplyResult:
    """Delete endpoint `name` if it exists; a no-op otherwise."""
    the_plan = plan_destroy(name, backend)
    if the_plan:
        backend.delete(name)
        backend.wait_deleted(name, timeout=timeout)
    return ApplyResult(plan=the_plan, state=None)
