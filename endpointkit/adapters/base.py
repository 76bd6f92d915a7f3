"""The Backend contract every provider implements, and the Capabilities it declares.

A backend implements a few primitives (the abstract methods); the public operations in this
class validate input once for every backend, keep the traffic arithmetic in one place, and
then call the primitives. The docstrings here are the spec the conformance suite checks.
"""

from __future__ import annotations

import abc
import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from enum import Enum
from typing import Any, ClassVar, TypeVar

from pydantic import ValidationError as PydanticValidationError

from endpointkit.async_invocation import AsyncInvocation, AsyncOutcome
from endpointkit.errors import (
    AlreadyExists,
    Conflict,
    DeploymentFailed,
    NotFound,
    PayloadTooLarge,
    Timeout,
    Unsupported,
    ValidationError,
)
from endpointkit.invocation import AsyncStreamResult, InvokeRequest, InvokeResult, StreamResult
from endpointkit.retry import Clock, Sleep, poll_until
from endpointkit.spec import (
    MAX_VERSIONS,
    RolloutStrategy,
    Scaling,
    Shadow,
    TrafficSplit,
    VersionSpec,
)
from endpointkit.state import EndpointState, Event, Status

__all__ = ["Backend", "Capability", "ProgressCallback"]

ProgressCallback = Callable[[EndpointState], None]
T = TypeVar("T")


class Capability(str, Enum):
    """Optional features. Calling one a backend lacks raises Unsupported naming the backend.

    | value | what it allows |
    |---|---|
    | `shadow` | a shadow version gets copies of live requests (native or emulated) |
    | `target_version` | invoke can pin one version |
    | `streaming` | response streaming |
    | `serverless` | scale-to-zero, pay-per-request versions |
    | `async_inference` | queued requests, results written to storage |
    | `autoscaling` | target-tracking between min and max replicas |
    | `scaling` | a live version's replicas and autoscaling change in place |
    | `alarm_gates` | rollout gates can watch the platform's metric alarms |
    | `native_rollout` | the platform replaces a version in place, rolling back on alarms |
    | `accelerators` | GPUs or other accelerators |
    """

    SHADOW = "shadow"  # a shadow version gets copies of live requests (native or emulated)
    TARGET_VERSION = "target_version"  # invoke can pin one version
    STREAMING = "streaming"  # response streaming
    SERVERLESS = "serverless"  # scale-to-zero, pay-per-request versions
    # queued requests, results written to storage: `invoke_async`, and the spec's
    # `async_inference` section (where results go, how many run at once)
    ASYNC_INFERENCE = "async_inference"
    AUTOSCALING = "autoscaling"  # target-tracking between min and max replicas
    SCALING = "scaling"  # a live version's replicas and autoscaling change in place
    ALARM_GATES = "alarm_gates"  # rollout gates can watch the platform's metric alarms
    # the platform replaces a version's model in place, shifting traffic by a canary, linear
    # or all-at-once policy and rolling back on its metric alarms (`rollout(..., native=True)`)
    NATIVE_ROLLOUT = "native_rollout"
    ACCELERATORS = "accelerators"  # GPUs or other accelerators

    def __str__(self) -> str:
        return self.value


class Backend(abc.ABC):
    """Control and data plane for one provider.

    Every mutating operation starts the change and returns the endpoint as the provider now
    reports it (possibly Creating or Updating); `wait` blocks until it is InService. Live
    versions keep serving throughout: versions are added before traffic moves to them, and
    traffic moves away before a version is removed.
    """

    #: The backend's name in messages and state (a class default; the mock's `like=` sets it
    #: per instance).
    name: str
    #: Optional features: a class default that an instance may set from its settings (a
    #: Vertex AI dedicated endpoint streams, a shared one does not).
    capabilities: frozenset[Capability] = frozenset()
    #: Largest request body the platform accepts, in bytes (checked before sending).
    max_payload_bytes: int | None = None
    #: Longest custom attributes string the platform passes to the model; 0: it refuses them
    #: (checked before sending).
    max_custom_attributes: int | None = None
    #: Largest body `invoke_async` accepts, in bytes (None: `max_payload_bytes`).
    max_async_payload_bytes: int | None = None
    #: Why this backend lacks a capability, where it is more than the generic hint (e.g. what
    #: to use instead); `Unsupported` errors carry it.
    unsupported_reasons: Mapping[Capability, str] = {}
    #: First and largest delay between looks in `AsyncInvocation.result`, seconds.
    async_poll_first_s: float = 0.05
    async_poll_max_s: float = 2.0
    #: Backend-specific keyword options `deploy` passes on to `_deploy` (e.g. SageMaker's
    #: `deployment_config`); any other option is refused before a call.
    deploy_options: ClassVar[frozenset[str]] = frozenset()
    #: First and largest delay between status polls in `wait` / `wait_deleted`, seconds.
    poll_first_s: float = 0.05
    poll_max_s: float = 15.0
    #: How this backend sleeps and reads time while it waits (tests inject both).
    sleep: Sleep = time.sleep
    clock: Clock = time.monotonic

    # -- primitives ---------------------------------------------------------------------------

    @abc.abstractmethod
    def get(self, name: str) -> EndpointState:
        """Return the endpoint. Raise NotFound if it does not exist."""

    @abc.abstractmethod
    def list_endpoints(self) -> list[EndpointState]:
        """Every endpoint this backend manages (never ones endpointkit did not create)."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Delete the endpoint and every version endpointkit created for it. NotFound if absent."""

    @abc.abstractmethod
    def history(self, name: str) -> list[Event]:
        """The endpoint's events, oldest first. NotFound if the endpoint never existed."""

    @abc.abstractmethod
    def _create(self, name: str, version: VersionSpec, tags: Mapping[str, str]) -> EndpointState:
        """Create the endpoint serving `version` with 100% of traffic."""

    @abc.abstractmethod
    def _deploy(
        self, name: str, version: VersionSpec, traffic: TrafficSplit, **options: Any
    ) -> EndpointState:
        """Add `version`, then apply `traffic` (the whole split, the new version included).
        `options` are this backend's `deploy_options`, already checked."""

    @abc.abstractmethod
    def _undeploy(self, name: str, version: str, traffic: TrafficSplit) -> EndpointState:
        """Apply `traffic` (which no longer names `version`), then remove `version`."""

    @abc.abstractmethod
    def _set_traffic(self, name: str, traffic: TrafficSplit) -> EndpointState:
        """Replace the split; every version in it is deployed."""

    def _set_shadow(self, name: str, shadow: Shadow | None) -> EndpointState:
        """Mirror a sample of requests to `shadow.version`, or stop mirroring (None)."""
        raise self._unsupported(Capability.SHADOW, "set_shadow", name)

    def _scale(self, name: str, version: str, scaling: Scaling) -> EndpointState:
        """Change a live version's replicas and autoscaling in place; it keeps serving."""
        raise self._unsupported(Capability.SCALING, "scale", name)

    def live_scaling(self, state: EndpointState) -> dict[str, Scaling]:
        """Each version's scaling as the platform holds it now (versions it cannot report are
        left out). Backends whose `get` does not carry it (it costs extra calls) override this.
        """
        return {v.name: v.scaling for v in state.versions if v.scaling is not None}

    def held_scaling(self, scaling: Scaling) -> Scaling:
        """`scaling` as this platform can hold it, to compare with `live_scaling`: settings the
        platform has no place for (e.g. cooldowns on Vertex AI) are reset to their defaults."""
        return scaling

    def alarms_firing(self, names: Sequence[str], *, endpoint: str) -> list[str]:
        """Which of the platform's metric alarms `names` are firing now (rollout gates).
        NotFound names the alarms that do not exist."""
        raise self._unsupported(Capability.ALARM_GATES, "rollout", endpoint)

    def _native_rollout(
        self, name: str, version: VersionSpec, strategy: RolloutStrategy, state: EndpointState
    ) -> EndpointState:
        """Start the platform's own rollout of `version` in place of the endpoint's version
        (`state` is the endpoint now, settled); returns at once. Refuse before any call what
        the platform does not support."""
        raise self._unsupported(Capability.NATIVE_ROLLOUT, "rollout", name)

    @abc.abstractmethod
    def _invoke(self, request: InvokeRequest) -> InvokeResult:
        """Send one request; the result names the version that answered."""

    async def _ainvoke(self, request: InvokeRequest) -> InvokeResult:
        """`_invoke` for async code; backends with a native async client override this."""
        return await asyncio.to_thread(self._invoke, request)

    def _invoke_stream(self, request: InvokeRequest) -> StreamResult:
        """Send one request and return once the answer's head arrived (errors reported up
        front raise here); the result names the version and yields the body's chunks as the
        model produces them, and closes the connection when closed or read to the end."""
        raise self._unsupported(Capability.STREAMING, "invoke_stream", request.endpoint)

    def _invoke_async(self, request: InvokeRequest) -> AsyncInvocation:
        """Queue one request (`request.inference_id` is set) and return its handle at once.
        Idempotent by inference id: a request already queued under the id is not queued again;
        its handle comes back with `duplicate=True`."""
        raise self._unsupported(Capability.ASYNC_INFERENCE, "invoke_async", request.endpoint)

    def _async_outcome(self, invocation: AsyncInvocation) -> AsyncOutcome:
        """Look once at a queued request: its status, and its answer or error once done."""
        raise self._unsupported(Capability.ASYNC_INFERENCE, "result", invocation.endpoint)

    def _find_invocation(self, endpoint: str, inference_id: str) -> AsyncInvocation:
        """The handle of a request queued earlier under `inference_id`; NotFound if none."""
        raise self._unsupported(Capability.ASYNC_INFERENCE, "result", endpoint)

    # -- public operations, shared by every backend -------------------------------------------

    def exists(self, name: str) -> bool:
        """True if the endpoint exists. Only NotFound means no: auth failures surface."""
        try:
            self.get(name)
        except NotFound:
            return False
        return True

    def create(
        self, name: str, version: VersionSpec, *, tags: Mapping[str, str] | None = None
    ) -> EndpointState:
        """Create endpoint `name` with its first version at 100%. AlreadyExists if present."""
        self._validate_version(name, version)
        if self.exists(name):
            raise AlreadyExists(
                f"endpoint {name!r} already exists on {self.name}.",
                hint="Use deploy() to add a version, or delete it first.",
                backend=self.name,
                operation="create",
                endpoint=name,
            )
        return self._create(name, version, dict(tags or {}))

    def deploy(
        self, name: str, version: VersionSpec, traffic: int = 0, **options: Any
    ) -> EndpointState:
        """Add an immutable version with `traffic` percent; the other versions share the rest
        in their current proportions. `options` are backend-specific (`deploy_options`).

        Deploying a version whose name and content hash are already live is a no-op (its
        replicas are left as they are: use `scale`); reusing a live version's name for
        different content raises Conflict (versions are immutable).
        """
        unknown = sorted(set(options) - self.deploy_options)
        if unknown:
            raise ValidationError(
                f"deploy got option(s) {', '.join(unknown)} that the {self.name} backend does "
                "not take; nothing was changed.",
                hint=f"It takes: {', '.join(sorted(self.deploy_options)) or 'no options'}.",
                backend=self.name,
                operation="deploy",
                endpoint=name,
                version=version.name,
            )
        self._validate_version(name, version)
        state = self.get(name)
        live = state.version(version.name)
        if live is not None:
            if live.spec_hash == version.spec_hash:
                if state.traffic[version.name] == traffic:
                    return state
                return self.set_traffic(name, state.traffic.with_share(version.name, traffic))
            raise Conflict(
                f"version {version.name!r} is already deployed on endpoint {name!r} with "
                f"different content (hash {live.spec_hash} vs {version.spec_hash}).",
                hint="Versions are immutable: give the changed version a new name (e.g. "
                f"'{_next_name(version.name)}') and shift traffic to it.",
                backend=self.name,
                operation="deploy",
                endpoint=name,
                version=version.name,
            )
        if len(state.versions) >= MAX_VERSIONS:
            raise ValidationError(
                f"endpoint {name!r} already has {len(state.versions)} versions, the most "
                "every backend allows.",
                hint="Undeploy a version first.",
                endpoint=name,
                version=version.name,
            )
        self._require_settled(state, "deploy")
        split = state.traffic.with_share(version.name, traffic)
        return self._deploy(name, version, split, **options)

    def undeploy(self, name: str, version: str) -> EndpointState:
        """Remove a version. Its traffic first goes to the other serving versions in proportion;
        a version that serves all traffic, the shadow, or the last version cannot be removed."""
        state = self.get(name)
        self._require_version(state, version, "undeploy")
        if state.shadow is not None and state.shadow.version == version:
            raise Conflict(
                f"version {version!r} is the shadow of endpoint {name!r}.",
                hint="Clear the shadow first (set_shadow(None)).",
                backend=self.name,
                operation="undeploy",
                endpoint=name,
                version=version,
            )
        if len(state.versions) == 1:
            raise Conflict(
                f"version {version!r} is the last version of endpoint {name!r}.",
                hint="Delete the endpoint instead ('endpointkit destroy').",
                backend=self.name,
                operation="undeploy",
                endpoint=name,
                version=version,
            )
        self._require_settled(state, "undeploy")
        try:
            split = state.traffic.without(version)
        except ValidationError as exc:
            raise exc.with_context(backend=self.name, operation="undeploy", endpoint=name) from None
        return self._undeploy(name, version, split)

    def set_traffic(self, name: str, traffic: TrafficSplit | Mapping[str, int]) -> EndpointState:
        """Replace the traffic split. Every version named must be deployed; the shadow may not
        serve live traffic. Setting the current split again is a no-op."""
        split = _as_split(traffic)
        state = self.get(name)
        for version in split:
            self._require_version(state, version, "set_traffic")
        if state.shadow is not None and split[state.shadow.version]:
            raise ValidationError(
                f"version {state.shadow.version!r} is the shadow of {name!r} and cannot serve "
                "live traffic.",
                hint="Clear the shadow first, then give it traffic.",
                endpoint=name,
            )
        full = TrafficSplit(
            {**dict.fromkeys(state.version_names, 0), **split.root} if split else {}
        )
        if full.same_as(state.traffic) and bool(full) == bool(state.traffic):
            return state
        self._require_settled(state, "set_traffic")
        return self._set_traffic(name, full)

    def set_shadow(self, name: str, shadow: Shadow | None) -> EndpointState:
        """Mirror `shadow.sample_percent`% of requests to a deployed version that serves no
        live traffic, or stop mirroring with None. Answers from the shadow are discarded."""
        if Capability.SHADOW not in self.capabilities:
            raise self._unsupported(Capability.SHADOW, "set_shadow", name)
        state = self.get(name)
        if shadow == state.shadow:
            return state
        if shadow is not None:
            self._require_version(state, shadow.version, "set_shadow")
            if state.traffic[shadow.version]:
                raise ValidationError(
                    f"version {shadow.version!r} serves {state.traffic[shadow.version]}% of live "
                    f"traffic on {name!r} and cannot also be the shadow.",
                    hint="Shift its traffic to other versions first.",
                    endpoint=name,
                    version=shadow.version,
                )
        self._require_settled(state, "set_shadow")
        return self._set_shadow(name, shadow)

    def scale(self, name: str, version: str, scaling: Scaling) -> EndpointState:
        """Change a deployed version's replica range and autoscaling in place: the version
        keeps its name, content hash and traffic, and keeps serving while it scales. Setting
        the scaling it already has is a no-op."""
        if Capability.SCALING not in self.capabilities:
            raise self._unsupported(Capability.SCALING, "scale", name)
        if scaling.autoscaling is not None and Capability.AUTOSCALING not in self.capabilities:
            error = self._unsupported(Capability.AUTOSCALING, "scale", name)
            error.version = version
            raise error
        state = self.get(name)
        self._require_version(state, version, "scale")
        live = state.version(version)
        if live is not None and live.spec is not None and live.spec.serverless is not None:
            raise ValidationError(
                f"version {version!r} on {name!r} is serverless and has no replicas to scale.",
                hint="Change its serverless settings with a new version instead.",
                backend=self.name,
                operation="scale",
                endpoint=name,
                version=version,
            )
        if self.live_scaling(state).get(version) == self.held_scaling(scaling):
            return state
        self._require_settled(state, "scale")
        return self._scale(name, version, scaling)

    def native_rollout(
        self, name: str, version: VersionSpec, strategy: RolloutStrategy
    ) -> EndpointState:
        """Start replacing the endpoint's version with `version` by the platform's own
        traffic shifting (`strategy`: canary, linear, all at once) and alarm rollback; returns
        at once, the endpoint updating. Unsupported without Capability.NATIVE_ROLLOUT;
        whatever the platform would refuse is refused before any call. `wait` for the outcome:
        a rolled-back update leaves the old version serving and says why in the history."""
        if Capability.NATIVE_ROLLOUT not in self.capabilities:
            error = self._unsupported(Capability.NATIVE_ROLLOUT, "rollout", name)
            error.version = version.name
            raise error
        self._validate_version(name, version)
        state = self.get(name)
        live = state.version(version.name)
        if live is not None:
            if live.spec_hash == version.spec_hash and state.traffic.serving() == {
                version.name: 100
            }:
                return state  # already rolled out
            raise Conflict(
                f"version {version.name!r} is already deployed on endpoint {name!r}; a native "
                "rollout replaces the endpoint's version with a new one.",
                hint="Give the new version a name of its own.",
                backend=self.name,
                operation="rollout",
                endpoint=name,
                version=version.name,
            )
        self._require_settled(state, "rollout")
        return self._native_rollout(name, version, strategy, state)

    def invoke(self, request: InvokeRequest) -> InvokeResult:
        """Send raw bytes to the endpoint; `request.version` pins one version where the
        backend can. Checked before anything is sent: version pinning and payload size."""
        self._check_request(request, "invoke")
        return self._invoke(request)

    async def ainvoke(self, request: InvokeRequest) -> InvokeResult:
        """`invoke` for async code."""
        self._check_request(request, "invoke")
        return await self._ainvoke(request)

    def invoke_async(self, request: InvokeRequest) -> AsyncInvocation:
        """Queue raw bytes for asynchronous inference; returns at once with a handle that says
        where the answer will be written and waits for it (`AsyncInvocation.result`).

        Idempotent by `request.inference_id` (one is made up when it is None): queuing an id
        again queues nothing and returns the first request's handle. Checked before anything is
        sent: the capability, version pinning, payload size (`max_async_payload_bytes`).
        """
        if Capability.ASYNC_INFERENCE not in self.capabilities:
            raise self._unsupported(Capability.ASYNC_INFERENCE, "invoke_async", request.endpoint)
        self._check_request(request, "invoke_async")
        if not request.inference_id:
            request = replace(request, inference_id=uuid.uuid4().hex)
        return self._invoke_async(request)

    async def ainvoke_async(self, request: InvokeRequest) -> AsyncInvocation:
        """`invoke_async` for async code (queued from a worker thread)."""
        return await asyncio.to_thread(self.invoke_async, request)

    def async_outcome(self, invocation: AsyncInvocation) -> AsyncOutcome:
        """Look once at a queued request (what `AsyncInvocation.status` and `result` use)."""
        if Capability.ASYNC_INFERENCE not in self.capabilities:
            raise self._unsupported(Capability.ASYNC_INFERENCE, "result", invocation.endpoint)
        return self._async_outcome(invocation)

    def find_invocation(self, endpoint: str, inference_id: str) -> AsyncInvocation:
        """The handle of the request queued on `endpoint` under `inference_id` (e.g. by another
        process); NotFound if there is none."""
        if Capability.ASYNC_INFERENCE not in self.capabilities:
            raise self._unsupported(Capability.ASYNC_INFERENCE, "result", endpoint)
        return self._find_invocation(endpoint, inference_id)

    def invoke_stream(self, request: InvokeRequest) -> StreamResult:
        """Send raw bytes and stream the answer: chunks arrive as the model produces them.

        Returns once the answer's head arrived, so what the platform or the model reports up
        front (NotFound, Throttled, ModelError, ...) raises here; a failure mid-stream raises
        from the iteration. Ask for server-sent events (`accept=EVENT_STREAM`, what
        `Endpoint.invoke_stream` sends by default), which the endpointkit server streams (so
        does Vertex AI); a model that cannot stream answers in one chunk. `request.timeout`
        bounds the wait for the head and for each chunk after it.
        """
        if Capability.STREAMING not in self.capabilities:
            raise self._unsupported(Capability.STREAMING, "invoke_stream", request.endpoint)
        self._check_request(request, "invoke_stream")
        return self._invoke_stream(request)

    async def ainvoke_stream(self, request: InvokeRequest) -> AsyncStreamResult:
        """`invoke_stream` for async code: the request and each chunk are read in a worker
        thread, so the event loop never blocks."""
        opening = asyncio.ensure_future(asyncio.to_thread(self.invoke_stream, request))
        try:
            result = await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(_close_opened)  # the stream that opens after all
            raise
        return AsyncStreamResult.from_sync(result)

    def wait(
        self,
        name: str,
        *,
        timeout: float = 1800.0,
        progress: ProgressCallback | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
    ) -> EndpointState:
        """Poll `get` until the endpoint is InService (or Degraded: serving, with a version
        that could not start) and return it.

        Raises DeploymentFailed with the platform's reason (and where to read logs) if it ends
        Failed, and Timeout naming the last status seen if `timeout` seconds pass first.
        Delays grow exponentially from `poll_first_s` to `poll_max_s`.
        """

        def fetch() -> EndpointState:
            state = self.get(name)
            if progress is not None:
                progress(state)
            return state

        def expired(state: EndpointState) -> Timeout:
            return Timeout(
                f"endpoint {name!r} on {self.name} was still {state.raw_status or state.status}"
                f" after {timeout:g} s.",
                last_status=str(state.status),
                hint="Wait longer (--timeout) or check its status with "
                f"'endpointkit status {name}'.",
                backend=self.name,
                operation="wait",
                endpoint=name,
            )

        state = self._poll(
            fetch,
            lambda s: s.status.is_terminal,
            timeout=timeout,
            expired=expired,
            sleep=sleep,
            clock=clock,
        )
        if state.status is Status.FAILED:
            raise DeploymentFailed(
                f"endpoint {name!r} on {self.name} failed: "
                f"{state.failure_reason or 'no reason given'}.",
                reason=state.failure_reason or "",
                log_hint=str(state.details.get("log_hint", "")),
                hint="Fix the cause, then deploy a new version or delete the endpoint.",
                backend=self.name,
                operation="wait",
                endpoint=name,
            )
        return state

    def wait_deleted(
        self,
        name: str,
        *,
        timeout: float = 1800.0,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Poll until the endpoint is gone; Timeout if it still exists after `timeout` s."""

        def expired(_: bool) -> Timeout:
            return Timeout(
                f"endpoint {name!r} still exists {timeout:g} s after delete on {self.name}.",
                hint=f"Check it with 'endpointkit status {name} --backend {self.name}'; the "
                "delete may have failed on the platform.",
                backend=self.name,
                operation="delete",
                endpoint=name,
            )

        self._poll(
            lambda: self.exists(name),
            lambda exists: not exists,
            timeout=timeout,
            expired=expired,
            sleep=sleep,
            clock=clock,
        )

    def _poll(
        self,
        fetch: Callable[[], T],
        done: Callable[[T], bool],
        *,
        timeout: float,
        expired: Callable[[T], Exception],
        sleep: Sleep | None = None,
        clock: Clock | None = None,
    ) -> T:
        """`retry.poll_until` with this backend's poll delays, sleep and clock."""
        return poll_until(
            fetch,
            done,
            timeout=timeout,
            expired=expired,
            first_s=self.poll_first_s,
            max_s=self.poll_max_s,
            sleep=sleep or self.sleep,
            clock=clock or self.clock,
        )

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for in-process backends
        """Release clients and connections."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- helpers for subclasses ---------------------------------------------------------------

    def _unsupported(self, capability: Capability, operation: str, endpoint: str) -> Unsupported:
        return Unsupported(
            f"the {self.name} backend does not support {capability.value.replace('_', ' ')} "
            f"(needed by {operation} on {endpoint!r}); nothing was changed.",
            hint=self.unsupported_reasons.get(capability) or _SUPPORT_HINTS.get(capability, ""),
            backend=self.name,
            operation=operation,
            endpoint=endpoint,
        )

    def _validate_version(self, endpoint: str, version: VersionSpec) -> None:
        """Check a version before any call: features the backend lacks raise Unsupported.

        Backends extend this (calling super) with their platform's own limits.
        """
        needs = {
            Capability.SERVERLESS: version.serverless is not None,
            Capability.ASYNC_INFERENCE: version.async_inference is not None,
            Capability.AUTOSCALING: version.autoscaling is not None,
            Capability.ACCELERATORS: version.resources.accelerator_count > 0,
        }
        for capability, needed in needs.items():
            if needed and capability not in self.capabilities:
                error = self._unsupported(capability, "deploy", endpoint)
                error.version = version.name
                raise error

    def _check_request(self, request: InvokeRequest, operation: str) -> None:
        """What every backend checks before sending: version pinning, payload size and custom
        attributes."""
        if request.version is not None and Capability.TARGET_VERSION not in self.capabilities:
            raise self._unsupported(Capability.TARGET_VERSION, operation, request.endpoint)
        limit = self.max_payload_bytes
        if operation == "invoke_async" and self.max_async_payload_bytes is not None:
            limit = self.max_async_payload_bytes
        self._check_payload(request.endpoint, request.body, limit, operation)
        limit, attributes = self.max_custom_attributes, request.custom_attributes
        if limit is None or attributes is None:
            return
        if limit == 0:
            raise Unsupported(
                f"custom attributes are a SageMaker feature; the {self.name} backend does not "
                "pass them to the container. Nothing was sent.",
                hint="Put the information in the request body instead.",
                backend=self.name,
                operation=operation,
                endpoint=request.endpoint,
            )
        if len(attributes) > limit:
            raise ValidationError(
                f"custom_attributes is limited to {limit} characters on the {self.name} "
                f"backend; these have {len(attributes)}. Nothing was sent.",
                backend=self.name,
                operation=operation,
                endpoint=request.endpoint,
            )

    def _check_payload(
        self, name: str, body: bytes, limit: int | None, operation: str = "invoke"
    ) -> None:
        if limit is not None and len(body) > limit:
            raise PayloadTooLarge(
                f"request to {name!r} is {len(body):,} bytes; {self.name} accepts at most "
                f"{limit:,}. Nothing was sent.",
                backend=self.name,
                operation=operation,
                endpoint=name,
            )

    def _require_version(self, state: EndpointState, version: str, operation: str) -> None:
        if state.version(version) is None:
            raise NotFound(
                f"version {version!r} is not deployed on endpoint {state.name!r} "
                f"(deployed: {', '.join(state.version_names) or 'none'}).",
                hint=f"Deploy it first, or check 'endpointkit status {state.name}'.",
                backend=self.name,
                operation=operation,
                endpoint=state.name,
                version=version,
            )

    def _require_settled(self, state: EndpointState, operation: str) -> None:
        if state.status in (Status.CREATING, Status.UPDATING, Status.DELETING):
            raise Conflict(
                f"endpoint {state.name!r} is {state.status} and cannot {operation} now.",
                backend=self.name,
                operation=operation,
                endpoint=state.name,
            )
        if state.status is Status.FAILED and operation != "deploy":
            raise Conflict(
                f"endpoint {state.name!r} is Failed ({state.failure_reason or 'no reason'}).",
                hint="Delete it and create it again.",
                backend=self.name,
                operation=operation,
                endpoint=state.name,
            )

    def not_found(self, name: str, operation: str) -> NotFound:
        """The standard NotFound for a missing endpoint."""
        return NotFound(
            f"endpoint {name!r} not found on {self.name}.",
            hint=f"Run 'endpointkit list --backend {self.name}' to see endpoints.",
            backend=self.name,
            operation=operation,
            endpoint=name,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


_SUPPORT_HINTS = {
    Capability.SERVERLESS: "Serverless versions run on SageMaker; use instance resources here.",
    Capability.ASYNC_INFERENCE: "Use invoke() and wait for the answer, or a backend with "
    "asynchronous inference (local, mock, sagemaker).",
    Capability.TARGET_VERSION: "Invoke without version=, or use a backend that can pin versions.",
    Capability.SHADOW: "Use a backend with shadow support (local, mock, sagemaker).",
    Capability.NATIVE_ROLLOUT: "Roll out client-side instead: rollout(...) without native=True "
    "shifts traffic step by step and watches the same gates.",
    Capability.SCALING: "Deploy the new replica counts as a new version and shift traffic to it.",
    Capability.STREAMING: "Use invoke() for the whole answer at once, or a backend that streams "
    "(local, mock, sagemaker, vertex with dedicated_endpoint=True).",
}


def _close_opened(opening: asyncio.Future[StreamResult]) -> None:
    """Close a stream whose caller stopped waiting for it to open."""
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


def _as_split(traffic: TrafficSplit | Mapping[str, int]) -> TrafficSplit:
    if isinstance(traffic, TrafficSplit):
        return traffic
    try:
        return TrafficSplit(dict(traffic))
    except PydanticValidationError as exc:
        # pydantic's messages already name the shares and their sum.
        problems = "; ".join(
            str(e["msg"]).removeprefix("Value error, ") for e in exc.errors(include_url=False)
        )
        raise ValidationError(
            f"invalid traffic split {dict(traffic)}: {problems}.",
            hint="Give integer percentages that sum to 100, e.g. v1=90 v2=10.",
        ) from None


def _next_name(name: str) -> str:
    stem = name.rstrip("0123456789")
    digits = name[len(stem) :]
    return f"{stem}{int(digits) + 1}" if digits else f"{name}-2"
