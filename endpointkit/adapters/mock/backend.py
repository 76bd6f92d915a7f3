"""MockBackend: the test helpers and the Backend primitives, over the mock's own modules:
_state (the in-memory endpoints), _handlers (what runs for a version), _wire (running it as
the server does), _faults (what goes wrong on purpose) and _records (calls and history).

See the package docstring (endpointkit.adapters.mock) for what the mock does.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from endpointkit.adapters._sagemaker_only import warn_sagemaker_only
from endpointkit.adapters.base import Backend, Capability
from endpointkit.adapters.limits import PROFILES, Limits
from endpointkit.adapters.mock import _records
from endpointkit.adapters.mock._async import AsyncJobs
from endpointkit.adapters.mock._faults import Fault, FaultKind, Faults
from endpointkit.adapters.mock._handlers import Handlers
from endpointkit.adapters.mock._records import Call
from endpointkit.adapters.mock._state import MockEndpoint, MockVersion, now
from endpointkit.adapters.mock._wire import (
    Handler,
    answer,
    start_stream,
    stream_kind,
)
from endpointkit.async_invocation import AsyncInvocation, AsyncOutcome
from endpointkit.errors import ModelError, NotFound, NotReady, ValidationError
from endpointkit.invocation import InvokeRequest, InvokeResult, StreamResult
from endpointkit.spec import AsyncInference, Scaling, Shadow, TrafficSplit, VersionSpec
from endpointkit.state import EndpointState, Event, Status

__all__ = ["MockBackend"]


class MockBackend(Backend):
    """Deterministic in-process backend. State is per instance.

    Settings: `seed` for routing and shadow sampling; `transition_polls` makes each change
    report Creating/Updating for that many `get` calls, as real platforms do; `predictors`
    maps version names to callables (same as `register`).

    Asynchronous inference (`invoke_async`): a queued request stays Queued for `async_polls`
    looks and `async_delay_s` seconds of `clock`, then the next look runs it like `invoke`
    (injected faults included); retryable failures are delivered again up to `async_attempts`
    times, then the request fails with its last error. `run_queued()` runs every due request.

    `like` ("sagemaker", "vertex", "vertex-dedicated" or "local") gives the mock exactly that
    backend's capabilities and request limits (endpointkit.adapters.limits): payload size,
    version pinning, streaming, shadows, custom attributes. What the platform would refuse
    raises here too (Unsupported, PayloadTooLarge, ValidationError), naming
    "mock (like vertex)". Without `like` the mock allows nearly everything.
    """

    name = "mock"
    capabilities = frozenset(
        {
            Capability.SHADOW,
            Capability.TARGET_VERSION,
            Capability.AUTOSCALING,
            Capability.ACCELERATORS,
            Capability.SERVERLESS,
            Capability.SCALING,
            Capability.STREAMING,
            Capability.ALARM_GATES,
            Capability.ASYNC_INFERENCE,
        }
    )
    max_payload_bytes: int | None = 6 * 1024 * 1024
    async_poll_first_s = 0.001
    async_poll_max_s = 0.01

    def __init__(
        self,
        *,
        seed: int = 0,
        transition_polls: int = 0,
        predictors: Mapping[str, Handler] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        like: str | None = None,
        async_polls: int = 0,
        async_delay_s: float = 0.0,
        async_attempts: int = 3,
    ) -> None:
        if like is not None:
            limits = _profile(like)
            self.name = f"mock (like {like})"
            self.capabilities = limits.capabilities
            self.max_payload_bytes = limits.max_payload_bytes
            self.max_custom_attributes = limits.max_custom_attributes
            self.unsupported_reasons = limits.unsupported_reasons
        self._random = random.Random(seed)
        self._transition_polls = transition_polls
        self._handlers = Handlers(predictors)
        self._endpoints: dict[str, MockEndpoint] = {}
        self._history: dict[str, list[Event]] = {}
        self._lock = threading.RLock()
        self._faults = Faults(self._lock)
        self._alarms: dict[str, bool] = {}
        self.sleep = sleep
        self.clock = clock
        self.calls: list[Call] = []
        self._async = AsyncJobs(
            self._lock,
            polls=async_polls,
            delay_s=async_delay_s,
            attempts=async_attempts,
            clock=clock,
            spec_of=self._async_spec,
        )

    # -- test helpers ---------------------------------------------------------------------------

    def set_alarm(self, name: str, firing: bool) -> None:
        """Create or change a metric alarm that rollout gates can watch (`Gates.alarms`)."""
        with self._lock:
            self._alarms[name] = firing

    def alarms_firing(self, names: Sequence[str], *, endpoint: str) -> list[str]:
        with self._lock:
            missing = [n for n in names if n not in self._alarms]
            if missing:
                raise NotFound(
                    f"alarm {', '.join(repr(n) for n in missing)} does not exist on the mock "
                    "backend.",
                    hint="Create it first with MockBackend.set_alarm(name, firing=False).",
                    backend=self.name,
                    operation="rollout",
                    endpoint=endpoint,
                )
            return [n for n in names if self._alarms[n]]

    def register(self, version: str, handler: Handler, *, endpoint: str | None = None) -> None:
        """Run `handler` for `version` (on `endpoint`, or on every endpoint).

        `handler(instances)` or `handler(instances, parameters)` returns one output per
        instance; an object with a `predict` method (a Predictor) works too. For
        `invoke_stream`, a handler that returns an iterator (a generator) streams its items, as
        does a predictor's `predict_stream`; other handlers stream their whole answer at once.
        """
        self._handlers.register(version, handler, endpoint)

    def add_endpoint(
        self,
        name: str,
        handlers: Mapping[str, Handler],
        traffic: Mapping[str, int] | None = None,
    ) -> EndpointState:
        """Create `name` with one version per handler (first one gets 100% unless `traffic`)."""
        versions = list(handlers)
        if not versions:
            raise ValidationError("add_endpoint needs at least one version handler")
        for version, handler in handlers.items():
            self.register(version, handler, endpoint=name)
        settle = partial(self.wait, name, sleep=lambda _: None)
        self.create(name, VersionSpec(name=versions[0]))
        settle()
        for version in versions[1:]:
            self.deploy(name, VersionSpec(name=version), 0)
            settle()
        if traffic is not None:
            self.set_traffic(name, traffic)
        return settle()

    def inject(self, kind: FaultKind, **options: Any) -> Fault:
        """Add a fault; see `Fault` for options. Returns it so a test can inspect `fired`."""
        fault = Fault(kind=kind, **options)
        self._faults.add(fault)
        return fault

    def clear_faults(self) -> None:
        self._faults.clear()

    def run_queued(self) -> int:
        """Run every queued asynchronous request that is due now (its `async_delay_s` has
        passed); returns how many finished."""
        return self._async.run_due(self._invoke)

    def calls_to(self, endpoint: str, *, shadow: bool | None = False) -> list[Call]:
        """Recorded calls to `endpoint`; live calls only by default (shadow=None: all)."""
        return _records.calls_to(self.calls, endpoint, shadow)

    def served_counts(self, endpoint: str) -> dict[str, int]:
        """How many live calls each version answered."""
        return _records.served_counts(self.calls_to(endpoint))

    # -- primitives -------------------------------------------------------------------------------

    def get(self, name: str) -> EndpointState:
        with self._lock:
            endpoint = self._require(name, "get")
            endpoint.poll()
            return endpoint.state(self.name)

    def list_endpoints(self) -> list[EndpointState]:
        with self._lock:
            return [
                e.state(self.name) for e in sorted(self._endpoints.values(), key=lambda e: e.name)
            ]

    def delete(self, name: str) -> None:
        with self._lock:
            self._require(name, "delete")
            del self._endpoints[name]
            self._record(name, "deleted", message="endpoint deleted")

    def history(self, name: str) -> list[Event]:
        with self._lock:
            if name not in self._history:
                raise self.not_found(name, "history")
            return list(self._history[name])

    def _validate_version(self, endpoint: str, version: VersionSpec) -> None:
        """Base checks; SageMaker-only async_inference settings are warned about."""
        super()._validate_version(endpoint, version)
        warn_sagemaker_only(self.name, endpoint, version)

    def _create(self, name: str, version: VersionSpec, tags: Mapping[str, str]) -> EndpointState:
        with self._lock:
            at = now()
            endpoint = MockEndpoint(
                name=name,
                tags=dict(tags),
                versions={},
                traffic=TrafficSplit({}),
                created_at=at,
                updated_at=at,
            )
            self._endpoints[name] = endpoint
            self._history[name] = []
            self._record(name, "created", version=version.name, message="endpoint created")
            loaded, failure = self._load(name, version)
            if loaded is None:
                endpoint.status = Status.FAILED
                endpoint.failure_reason = failure
                self._record(name, "failed", version=version.name, message=failure)
                return endpoint.state(self.name)
            endpoint.versions[version.name] = loaded
            endpoint.traffic = TrafficSplit({version.name: 100})
            self._record(
                name, "deployed", version=version.name, message="deployed", after=endpoint.traffic
            )
            endpoint.transition(Status.CREATING, self._transition_polls)
            return endpoint.state(self.name)

    def _deploy(
        self, name: str, version: VersionSpec, traffic: TrafficSplit, **options: Any
    ) -> EndpointState:
        with self._lock:
            endpoint = self._require(name, "deploy")
            loaded, failure = self._load(name, version)
            if loaded is None:
                # Like SageMaker's failed UpdateEndpoint: the endpoint keeps serving what it
                # had, and reports why the update failed.
                endpoint.failure_reason = failure
                self._record(name, "failed", version=version.name, message=failure)
                endpoint.transition(Status.UPDATING, self._transition_polls)
                return endpoint.state(self.name)
            before = endpoint.traffic
            endpoint.versions[version.name] = loaded
            endpoint.traffic = traffic
            endpoint.failure_reason = None
            self._record(
                name,
                "deployed",
                version=version.name,
                message=f"deployed with {traffic[version.name]}% of traffic",
                before=before,
                after=traffic,
            )
            endpoint.transition(Status.UPDATING, self._transition_polls)
            return endpoint.state(self.name)

    def _undeploy(self, name: str, version: str, traffic: TrafficSplit) -> EndpointState:
        with self._lock:
            endpoint = self._require(name, "undeploy")
            before = endpoint.traffic
            endpoint.traffic = traffic
            del endpoint.versions[version]
            self._record(
                name,
                "undeployed",
                version=version,
                message="undeployed",
                before=before,
                after=traffic,
            )
            endpoint.transition(Status.UPDATING, self._transition_polls)
            return endpoint.state(self.name)

    def _set_traffic(self, name: str, traffic: TrafficSplit) -> EndpointState:
        with self._lock:
            endpoint = self._require(name, "set_traffic")
            before = endpoint.traffic
            endpoint.traffic = traffic
            self._record(name, "traffic", message="traffic changed", before=before, after=traffic)
            endpoint.transition(Status.UPDATING, self._transition_polls)
            return endpoint.state(self.name)

    def _scale(self, name: str, version: str, scaling: Scaling) -> EndpointState:
        with self._lock:
            endpoint = self._require(name, "scale")
            live = endpoint.versions[version]
            before = live.spec.scaling
            live.spec = live.spec.with_scaling(scaling)
            self._record(
                name,
                "scaled",
                version=version,
                message=f"scaled from {before.describe() if before else 'serverless'} to "
                f"{scaling.describe()}",
            )
            endpoint.transition(Status.UPDATING, self._transition_polls)
            return endpoint.state(self.name)

    def _set_shadow(self, name: str, shadow: Shadow | None) -> EndpointState:
        with self._lock:
            endpoint = self._require(name, "set_shadow")
            endpoint.shadow = shadow
            message = (
                f"shadow set to {shadow.version} at {shadow.sample_percent}%"
                if shadow
                else "shadow cleared"
            )
            self._record(
                name, "shadow", version=shadow.version if shadow else None, message=message
            )
            endpoint.transition(Status.UPDATING, self._transition_polls)
            return endpoint.state(self.name)

    def _invoke(self, request: InvokeRequest) -> InvokeResult:
        chosen, handler, shadow, shadow_handler = self._choose(
            request.endpoint, request.version, "invoke"
        )
        result = self._run(handler, chosen, request, shadow=False)
        if shadow is not None and shadow_handler is not None:
            # A shadow's failure is recorded in `calls` and never reaches the caller.
            with contextlib.suppress(Exception):
                self._run(
                    shadow_handler, shadow.version, replace(request, timeout=None), shadow=True
                )
        return result

    def _invoke_stream(self, request: InvokeRequest) -> StreamResult:
        """Stream as the endpointkit server does, with its own negotiation and framing: items
        as server-sent events or JSON lines when `accept` prefers one; any other Accept gets
        the whole answer as one chunk. Shadows get no copy of streamed requests."""
        kind = stream_kind(request.accept)
        if kind is None:
            whole = self._invoke(request)
            return StreamResult(
                [whole.body],
                content_type=whole.content_type,
                version=whole.version,
                custom_attributes=whole.custom_attributes,
                headers=whole.headers,
            )
        chosen, handler, _, _ = self._choose(request.endpoint, request.version, "invoke_stream")
        context = {
            "backend": self.name,
            "operation": "invoke_stream",
            "endpoint": request.endpoint,
            "version": chosen,
        }
        record = partial(self._record_call, request, chosen, shadow=False)
        self._faults.before_request(
            request.endpoint, chosen, request.timeout, record, context, self.sleep
        )
        try:
            stream = start_stream(handler, request, kind, context)
        except ModelError as exc:
            record(exc.status or 500, response=exc.body, error=exc.message)
            raise exc.with_context(**context) from None
        # what the first chunk carried; the rest is read by the caller
        record(200, response=stream.first)
        return StreamResult(
            stream.chunks,
            content_type=kind,
            version=chosen,
            custom_attributes=stream.prediction.custom_attributes,
            headers={"x-endpointkit-version": chosen, "content-type": kind},
            on_close=stream.close,
        )

    def _invoke_async(self, request: InvokeRequest) -> AsyncInvocation:
        with self._lock:
            self._require(request.endpoint, "invoke_async")

        def make(output: str, failure: str | None) -> AsyncInvocation:
            assert request.inference_id is not None
            return AsyncInvocation(self, request.endpoint, request.inference_id, output, failure)

        return self._async.queue(request, make)

    def _async_outcome(self, invocation: AsyncInvocation) -> AsyncOutcome:
        return self._async.look(invocation, self._invoke)

    def _find_invocation(self, endpoint: str, inference_id: str) -> AsyncInvocation:
        return self._async.find(endpoint, inference_id, self.name)

    # -- internals --------------------------------------------------------------------------------

    def _async_spec(self, name: str) -> AsyncInference | None:
        with self._lock:
            endpoint = self._endpoints.get(name)
            if endpoint is None:
                return None
            for version in endpoint.versions.values():
                if version.spec.async_inference is not None:
                    return version.spec.async_inference
        return None

    def _choose(
        self, name: str, version: str | None, operation: str
    ) -> tuple[str, Handler, Shadow | None, Handler | None]:
        """The version that answers, its handler, and the shadow's if this request is copied."""
        with self._lock:
            endpoint = self._require(name, operation)
            if endpoint.status is Status.CREATING or endpoint.status is Status.FAILED:
                raise NotReady(
                    f"endpoint {name!r} is {endpoint.status}; it cannot serve requests yet.",
                    backend=self.name,
                    operation=operation,
                    endpoint=name,
                )
            chosen = self._route(endpoint, version)
            handler = endpoint.versions[chosen].handler
            shadow = endpoint.shadow
            mirror = shadow is not None and self._random.randrange(100) < shadow.sample_percent
            shadow_handler = (
                endpoint.versions[shadow.version].handler if shadow and mirror else None
            )
        return chosen, handler, shadow, shadow_handler

    def _require(self, name: str, operation: str) -> MockEndpoint:
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise self.not_found(name, operation)
        return endpoint

    def _record(self, name: str, kind: Any, **details: Any) -> None:
        """Add an event to the history of `name` (details: version, message, before, after)."""
        self._history.setdefault(name, []).append(_records.event(name, kind, **details))

    def _load(self, name: str, version: VersionSpec) -> tuple[MockVersion | None, str]:
        """Load the version's model, or say why it cannot be deployed (injected or real)."""
        fault = self._faults.fire(name, version.name, ("deploy",))
        if fault is not None:
            return None, fault.reason
        try:
            handler = self._handlers.resolve(name, version)
        except Exception as exc:
            return None, f"version {version.name!r} could not load its model: {exc}"
        return MockVersion(spec=version, handler=handler, created_at=now()), ""

    def _route(self, endpoint: MockEndpoint, version: str | None) -> str:
        if version is not None:
            if version not in endpoint.versions:
                raise NotFound(
                    f"version {version!r} is not deployed on endpoint {endpoint.name!r}.",
                    backend=self.name,
                    operation="invoke",
                    endpoint=endpoint.name,
                    version=version,
                )
            return version
        serving = endpoint.traffic.serving()
        if not serving:
            raise NotReady(
                f"endpoint {endpoint.name!r} has no traffic split: no version serves requests.",
                hint="Give a version traffic ('endpointkit traffic NAME v1=100').",
                backend=self.name,
                operation="invoke",
                endpoint=endpoint.name,
            )
        names = list(serving)
        return self._random.choices(names, weights=[serving[n] for n in names])[0]

    def _record_call(
        self, request: InvokeRequest, version: str, status: int, **outcome: Any
    ) -> None:
        """Record one request's answer (outcome: shadow, and response or error)."""
        with self._lock:
            self.calls.append(_records.call_of(request, version, status, **outcome))

    def _run(
        self, handler: Handler, version: str, request: InvokeRequest, *, shadow: bool
    ) -> InvokeResult:
        endpoint = request.endpoint
        record = partial(self._record_call, request, version, shadow=shadow)
        context = {
            "backend": self.name,
            "operation": "invoke",
            "endpoint": endpoint,
            "version": version,
        }
        self._faults.before_request(endpoint, version, request.timeout, record, context, self.sleep)
        try:
            prediction, content_type, response = answer(handler, request, context)
        except ModelError as exc:
            record(exc.status or 500, response=exc.body, error=exc.message)
            raise exc.with_context(**context) from None
        record(200, response=response)
        return InvokeResult(
            body=response,
            content_type=content_type,
            version=version,
            custom_attributes=prediction.custom_attributes,
            headers={"x-endpointkit-version": version},
        )


def _profile(like: str) -> Limits:
    """The capabilities and limits of the backend named `like`."""
    limits = PROFILES.get(like)
    if limits is None:
        raise ValidationError(
            f"like={like!r} names no backend the mock can imitate.",
            hint=f"Use one of: {', '.join(sorted(PROFILES))}.",
            backend="mock",
        )
    return limits
