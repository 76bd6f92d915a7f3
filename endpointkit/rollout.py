"""Provider-neutral progressive delivery: canary, linear, blue/green, with gates and rollback.

The controller runs client-side, so it works on every backend: it deploys the new version at
0%, moves traffic to it step by step, checks the gates while each step bakes, and on a failed
gate restores the split it started from and removes the new version again, then raises
RolledBack. Gates measure what the controller can see itself (probe requests to the new
version, a custom check) and, on platforms that have them (Capability.ALARM_GATES), the
platform's metric alarms: an alarm that fires during a bake rolls the version back.

`native=True` hands the whole rollout to the platform where it has one
(Capability.NATIVE_ROLLOUT, SageMaker's deployment guardrails): it replaces the endpoint's
only version in place, shifts traffic by the strategy and rolls back on the alarm gates itself.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from endpointkit.adapters.base import Capability
from endpointkit.errors import (
    Conflict,
    EndpointKitError,
    RolledBack,
    Unsupported,
    ValidationError,
)
from endpointkit.spec import (
    AllAtOnce,
    BlueGreen,
    Canary,
    Gates,
    Linear,
    RolloutStrategy,
    TrafficSplit,
    VersionSpec,
)
from endpointkit.state import EndpointState

if TYPE_CHECKING:
    from endpointkit.endpoint import Endpoint

__all__ = ["GateCheck", "RolloutResult", "run_rollout", "steps_of"]

GateCheck = Callable[[EndpointState], bool]


@dataclass
class RolloutResult:
    """What a rollout did: the percentages it went through and what the probes saw."""

    version: str
    steps: list[int] = field(default_factory=list)
    probes: int = 0
    probe_errors: int = 0
    state: EndpointState | None = None

    def __str__(self) -> str:
        from endpointkit.render import rollout_text

        return rollout_text(self)

    def __rich__(self) -> Any:
        from endpointkit.render import rollout_rich

        return rollout_rich(self)

    def _repr_html_(self) -> str:
        from endpointkit.render import rollout_html

        return rollout_html(self)


def steps_of(strategy: RolloutStrategy) -> list[tuple[int, float]]:
    """The (percent, bake seconds) steps of a strategy."""
    if isinstance(strategy, Canary):
        return [(strategy.percent, strategy.bake_s), (100, strategy.bake_s)]
    if isinstance(strategy, Linear):
        percents = [*range(strategy.step_percent, 100, strategy.step_percent), 100]
        return [(p, strategy.interval_s) for p in percents]
    if isinstance(strategy, (AllAtOnce, BlueGreen)):
        return [(100, strategy.bake_s)]
    raise TypeError(f"unknown rollout strategy {strategy!r}")


class _GateFailed(Exception):
    pass


@dataclass
class _Gatekeeper:
    endpoint: Endpoint
    version: str
    gates: Gates
    check: GateCheck | None
    result: RolloutResult

    @property
    def active(self) -> bool:
        return bool(self.gates.probe or self.check or self.gates.check or self.gates.alarms)

    def evaluate(self) -> None:
        """Raise _GateFailed with the reason if a gate fails."""
        if self.gates.alarms:
            firing = self.endpoint.backend.alarms_firing(
                self.gates.alarms, endpoint=self.endpoint.name
            )
            if firing:
                raise _GateFailed(f"alarm {', '.join(firing)} went into ALARM")
        if self.gates.probe:
            self._probe()
        for check in self._checks():
            state = self.endpoint.status()
            try:
                passed = check(state)
            except Exception as exc:
                raise _GateFailed(f"custom check raised {type(exc).__name__}: {exc}") from exc
            if not passed:
                raise _GateFailed("custom check returned False")

    def _checks(self) -> list[GateCheck]:
        checks = [self.check] if self.check else []
        if self.gates.check:
            module, _, name = self.gates.check.partition(":")
            checks.append(getattr(importlib.import_module(module), name))
        return checks

    def _probe(self) -> None:
        probe = self.gates.probe or []
        pinned = Capability.TARGET_VERSION in self.endpoint.backend.capabilities
        latencies: list[float] = []
        errors: list[str] = []
        for _ in range(self.gates.probes_per_check):
            started = time.perf_counter()
            try:
                prediction = self.endpoint.predict(probe, version=self.version if pinned else None)
            except EndpointKitError as exc:
                errors.append(f"{type(exc).__name__}: {exc.message}")
                latencies.append((time.perf_counter() - started) * 1000)
                continue
            if prediction.version not in (None, self.version):
                continue  # unpinned: another version answered; it says nothing about this one
            latencies.append((time.perf_counter() - started) * 1000)
        self.result.probes += len(latencies)
        self.result.probe_errors += len(errors)
        if not latencies:
            return
        error_rate = len(errors) / len(latencies)
        limit = self.gates.max_error_rate
        if limit is not None and error_rate > limit:
            raise _GateFailed(
                f"error rate {error_rate:.0%} over {len(latencies)} probes exceeds {limit:.0%}"
                f" (last error: {errors[-1]})"
            )
        p99 = sorted(latencies)[max(0, math.ceil(0.99 * len(latencies)) - 1)]
        max_p99 = self.gates.max_p99_latency_ms
        if max_p99 is not None and p99 > max_p99:
            raise _GateFailed(f"p99 latency {p99:.1f} ms exceeds {max_p99:g} ms")


def run_rollout(
    endpoint: Endpoint,
    version: VersionSpec,
    strategy: RolloutStrategy,
    *,
    check: GateCheck | None = None,
    timeout: float = 1800.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_step: Callable[[str], None] | None = None,
    native: bool = False,
) -> RolloutResult:
    """Deploy `version` and move traffic to it by `strategy`; see the module docstring.

    Raises RolledBack (traffic restored, the new version removed) when a gate fails, and
    Unsupported for gates this backend cannot watch (CloudWatch alarms without native rollouts).
    `native`: the platform rolls out instead (`_run_native`).
    """
    backend = endpoint.backend
    if native and Capability.NATIVE_ROLLOUT not in backend.capabilities:
        # Before the alarm checks below: the missing capability is the first thing to fix.
        backend.native_rollout(endpoint.name, version, strategy)  # raises Unsupported
    if strategy.gates.alarms:
        if Capability.ALARM_GATES not in backend.capabilities:
            raise Unsupported(
                f"the {backend.name} backend cannot watch metric alarms during a rollout; "
                "nothing was changed.",
                hint="Use probe, error-rate, latency or custom-check gates instead.",
                backend=backend.name,
                operation="rollout",
                endpoint=endpoint.name,
                version=version.name,
            )
        # Every alarm must exist (NotFound otherwise) and be quiet before anything changes.
        firing = backend.alarms_firing(strategy.gates.alarms, endpoint=endpoint.name)
        if firing:
            raise Conflict(
                f"alarm {', '.join(firing)} is already in ALARM, so the rollout of "
                f"{version.name!r} would be rolled back at once; nothing was changed.",
                hint="Wait until the alarm is OK (or fix what it reports), then roll out.",
                backend=backend.name,
                operation="rollout",
                endpoint=endpoint.name,
                version=version.name,
            )
    say = on_step or (lambda _: None)
    if native:
        return _run_native(endpoint, version, strategy, check, timeout, say)
    before = endpoint.status()
    original = before.traffic
    already_deployed = before.version(version.name) is not None
    result = RolloutResult(version=version.name)
    gatekeeper = _Gatekeeper(endpoint, version.name, strategy.gates, check, result)
    options: dict[str, Any] = {"timeout": timeout}
    endpoint.deploy(version, traffic=original[version.name], **options)
    say(f"deployed {version.name}")
    try:
        for percent, bake_s in steps_of(strategy):
            split = (
                original.with_share(version.name, percent)
                if original
                else TrafficSplit({version.name: 100})
            )
            endpoint.set_traffic(split, **options)
            result.steps.append(percent)
            say(f"{version.name} at {percent}%, baking {bake_s:g} s")
            _bake(gatekeeper, bake_s, sleep, clock)
    except _GateFailed as failure:
        reason = str(failure)
        say(f"gate failed: {reason}; rolling back")
        if original:
            endpoint.set_traffic(original, **options)
        if not already_deployed:
            endpoint.undeploy(version.name, **options)
        raise RolledBack(
            f"rollout of {version.name!r} on {endpoint.name!r} was rolled back at "
            f"{result.steps[-1] if result.steps else 0}%: {reason}.",
            reason=reason,
            hint="Traffic is back where it was; fix the version and roll out a new one.",
            backend=backend.name,
            operation="rollout",
            endpoint=endpoint.name,
            version=version.name,
        ) from None
    if isinstance(strategy, BlueGreen):
        for old in original.serving():
            if old != version.name:
                endpoint.undeploy(old, **options)
                say(f"undeployed {old} (blue)")
    result.state = endpoint.status()
    return result


def _run_native(
    endpoint: Endpoint,
    version: VersionSpec,
    strategy: RolloutStrategy,
    check: GateCheck | None,
    timeout: float,
    say: Callable[[str], None],
) -> RolloutResult:
    """The platform's own rollout (Capability.NATIVE_ROLLOUT): it replaces the endpoint's only
    version in place, shifts traffic by `strategy` and rolls back itself when an alarm gate
    fires; this starts it, waits for the outcome and raises RolledBack with the platform's
    reason if the old version serves again."""
    backend = endpoint.backend
    if check is not None:
        raise ValidationError(
            f"a native rollout of {version.name!r} cannot run a custom check: the platform "
            "shifts the traffic and watches only its metric alarms; nothing was changed.",
            hint="Turn the check into an alarm gate, or roll out without native=True.",
            backend=backend.name,
            operation="rollout",
            endpoint=endpoint.name,
            version=version.name,
        )
    before = endpoint.status()
    backend.native_rollout(endpoint.name, version, strategy)
    say(f"{backend.name} is rolling {version.name} out natively ({strategy.type})")
    state = backend.wait(endpoint.name, timeout=timeout)
    if state.version(version.name) is None:
        failures = [
            e.message
            for e in backend.history(endpoint.name)
            if e.kind == "failed" and e.version == version.name
        ]
        reason = state.failure_reason or (failures[-1] if failures else "no reason given")
        old = ", ".join(before.traffic.serving()) or "the previous version"
        say(f"{backend.name} rolled {version.name} back: {reason}")
        raise RolledBack(
            f"native rollout of {version.name!r} on {endpoint.name!r} was rolled back by "
            f"{backend.name}: {reason}.",
            reason=reason,
            hint=f"{old} serves all traffic again; fix the version and roll out a new one.",
            backend=backend.name,
            operation="rollout",
            endpoint=endpoint.name,
            version=version.name,
        )
    say(f"{version.name} serves all traffic")
    return RolloutResult(
        version=version.name, steps=[p for p, _ in steps_of(strategy)], state=state
    )


def _bake(
    gatekeeper: _Gatekeeper,
    bake_s: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    """Check the gates every `check_interval_s` until `bake_s` has passed (at least once)."""
    if not gatekeeper.active:
        if bake_s:
            sleep(bake_s)
        return
    deadline = clock() + bake_s
    while True:
        gatekeeper.evaluate()
        remaining = deadline - clock()
        if remaining <= 0:
            return
        sleep(min(gatekeeper.gates.check_interval_s, remaining))
