"""`Endpoint`: the handle users hold, and its async twin `AsyncEndpoint`.

```python
ep = Endpoint("churn", backend="local")
ep.deploy(VersionSpec(name="v2", model="./model-v2"), traffic=10)
ep.predict([[1.0, 2.0]]).version   # which version answered
ep.promote("v2")
```

Every change waits for the endpoint to be InService by default (`wait=False` returns at once)
and verifies that it took effect, so a deployment the platform rejected raises
DeploymentFailed with the platform's reason instead of passing silently.
"""

from __future__ import annotations

import asyncio
import functools
import html
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar

from endpointkit.adapters.base import Backend
from endpointkit.adapters.registry import get_backend
from endpointkit.async_invocation import AsyncInvocation
from endpointkit.errors import DeploymentFailed, ValidationError
from endpointkit.invocation import (
    EVENT_STREAM,
    JSON,
    InvokeRequest,
    InvokeResult,
    Prediction,
    encode_instances,
)
from endpointkit.progress import Progress, progress_display
from endpointkit.retry import async_invocation, invocation
from endpointkit.spec import (
    AllAtOnce,
    Autoscaling,
    BlueGreen,
    Canary,
    Linear,
    RolloutStrategy,
    Scaling,
    Shadow,
    TrafficSplit,
    VersionSpec,
)
from endpointkit.state import EndpointState, History

if TYPE_CHECKING:
    from endpointkit.rollout import GateCheck, RolloutResult

__all__ = ["AsyncEndpoint", "Endpoint"]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")
DEFAULT_TIMEOUT_S = 1800.0


def _as_version(version: VersionSpec | Mapping[str, Any]) -> VersionSpec:
    if isinstance(version, VersionSpec):
        return version
    try:
        return VersionSpec.model_validate(dict(version))
    except ValueError as exc:
        raise ValidationError(f"invalid version: {exc}") from None


def _as_strategy(strategy: RolloutStrategy | Mapping[str, Any] | None) -> RolloutStrategy:
    if strategy is None:
        return Canary()
    if isinstance(strategy, (AllAtOnce, BlueGreen, Canary, Linear)):
        return strategy
    from pydantic import TypeAdapter

    try:
        return TypeAdapter(RolloutStrategy).validate_python(dict(strategy))
    except ValueError as exc:
        raise ValidationError(f"invalid rollout strategy: {exc}") from None


def _as_scaling(
    current: Scaling | None,
    min_replicas: int | None,
    max_replicas: int | None,
    autoscaling: Autoscaling | Mapping[str, Any] | Literal[False] | None,
) -> Scaling:
    """The scaling asked for: what is given replaces the live value, the rest is kept."""
    base = current or Scaling()
    auto: Autoscaling | dict[str, Any] | None
    if autoscaling is None:
        auto = base.autoscaling
    elif autoscaling is False:
        auto = None
    else:
        auto = autoscaling if isinstance(autoscaling, Autoscaling) else dict(autoscaling)
    low = min_replicas if min_replicas is not None else base.min_replicas
    high = max_replicas if max_replicas is not None else max(base.max_replicas, low)
    try:
        return Scaling.model_validate(
            {"min_replicas": low, "max_replicas": high, "autoscaling": auto}
        )
    except ValueError as exc:
        raise ValidationError(f"invalid scaling: {exc}") from None


def _resolve_backend(backend: str | Backend | None, settings: Mapping[str, Any]) -> Backend:
    if isinstance(backend, Backend):
        if settings:
            raise ValidationError(
                f"backend settings ({', '.join(sorted(settings))}) were given with a "
                f"{backend.name} backend instance, which is already configured.",
                hint="Pass the settings when you build the backend, or pass the backend by "
                "name (backend='sagemaker', region=...) and let endpointkit build it.",
                backend=backend.name,
            )
        return backend
    return get_backend(backend, settings)


# -- invocation, shared by both twins ---------------------------------------------------------
# Each builder below is the one place an invocation's arguments are declared; `_invoking` and
# `_awaiting` turn it into the sync and the async method (same name, signature and docstring),
# so the twins cannot drift apart.


def _raw_body(body: object) -> bytes:
    """`body` as bytes (text as UTF-8, a file read whole); ValidationError for anything else,
    before any call."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    read = getattr(body, "read", None)
    if callable(read):  # an open file, as boto3's Body takes
        data = read()
        return data.encode() if isinstance(data, str) else bytes(data)
    raise ValidationError(
        f"a request body is raw bytes, text or a file to read, not a {type(body).__name__}.",
        hint="Use predict(instances) to send instances as JSON, or pass the encoded body, "
        'e.g. json.dumps({"instances": rows}).encode().',
    )


def _invoke_request(
    endpoint: str,
    body: bytes | str,
    *,
    content_type: str = JSON,
    accept: str | None = None,
    version: str | None = None,
    custom_attributes: str | None = None,
    inference_id: str | None = None,
    timeout: float | None = None,
) -> InvokeRequest:
    """Send raw bytes; retried on throttling and transient faults only. `version` pins one
    version where the backend can; `inference_id` tags the request in the platform's logs."""
    return InvokeRequest(
        endpoint,
        _raw_body(body),
        content_type,
        accept,
        version,
        custom_attributes,
        inference_id,
        timeout,
    )


def _stream_request(
    endpoint: str,
    body: bytes | str,
    *,
    content_type: str = JSON,
    accept: str | None = EVENT_STREAM,
    version: str | None = None,
    custom_attributes: str | None = None,
    inference_id: str | None = None,
    timeout: float | None = None,
) -> InvokeRequest:
    """Send raw bytes and iterate the answer's chunks as they arrive (server-sent events by
    default); `.version` names the version that answers. Throttling and transient faults are
    retried until the stream starts, never after. Use it in a `with` block (`async with` and
    `async for` on AsyncEndpoint)."""
    return _invoke_request(
        endpoint,
        body,
        content_type=content_type,
        accept=accept,
        version=version,
        custom_attributes=custom_attributes,
        inference_id=inference_id,
        timeout=timeout,
    )


def _async_request(
    endpoint: str,
    body: bytes | str,
    *,
    content_type: str = JSON,
    accept: str | None = None,
    version: str | None = None,
    custom_attributes: str | None = None,
    inference_id: str | None = None,
) -> InvokeRequest:
    """Queue raw bytes for asynchronous inference and return at once with an AsyncInvocation:
    `.status()`, `.result(timeout)` (or `await` it), and where the answer will be written.
    Idempotent by `inference_id` (made up when not given): queuing an id again queues nothing
    and returns the first request's handle, so retries (throttling, transient faults) are
    safe. Capability ASYNC_INFERENCE."""
    return _invoke_request(
        endpoint,
        body,
        content_type=content_type,
        accept=accept,
        version=version,
        custom_attributes=custom_attributes,
        inference_id=inference_id or uuid.uuid4().hex,  # made here: every retry sends it
    )


@dataclass(frozen=True)
class _PredictRequest(InvokeRequest):
    instance_count: int = 0


def _predict_request(
    endpoint: str,
    instances: Any,
    parameters: Mapping[str, Any] | None = None,
    *,
    version: str | None = None,
    timeout: float | None = None,
) -> InvokeRequest:
    """Send `{"instances": ..., "parameters": ...}`; get one prediction per instance and the
    version that served them. Throttling and transient faults are retried with backoff."""
    body = encode_instances(instances, parameters)
    return _PredictRequest(
        endpoint, body, JSON, JSON, version, timeout=timeout, instance_count=len(instances)
    )


def _as_prediction(result: InvokeResult, request: InvokeRequest) -> Prediction:
    count = request.instance_count if isinstance(request, _PredictRequest) else 0
    return Prediction.from_result(result, count)


def _keep(result: R, request: InvokeRequest) -> R:
    return result


def _bound_signature(build: Callable[..., Any], returns: Any) -> inspect.Signature:
    """`build`'s signature as a method's: `self` instead of the endpoint name."""
    params = list(inspect.signature(build).parameters.values())[1:]
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Signature([self_param, *params], return_annotation=returns)


def _invoking(
    build: Callable[Concatenate[str, P], InvokeRequest],
    send: Callable[[Backend, InvokeRequest], R],
    finish: Callable[[R, InvokeRequest], T],
) -> Callable[Concatenate[Endpoint, P], T]:
    """An `Endpoint` method: build the request, send it under the invocation retry policy."""

    def method(self: Endpoint, /, *args: P.args, **kwargs: P.kwargs) -> T:
        request = build(self.name, *args, **kwargs)
        policy = invocation(attempts=self._invoke_attempts, sleep=self._sleep)
        return finish(policy(send, self.backend, request), request)

    method.__doc__ = build.__doc__
    method.__signature__ = _bound_signature(build, _returns(send, finish))  # type: ignore[attr-defined]
    return method


def _returns(send: Callable[..., Any], finish: Callable[..., Any]) -> Any:
    """The generated method's return annotation, for help() and IDEs."""
    return inspect.signature(send if finish is _keep else finish).return_annotation


def _awaiting(
    build: Callable[Concatenate[str, P], InvokeRequest],
    send: Callable[[Backend, InvokeRequest], Awaitable[R]],
    finish: Callable[[R, InvokeRequest], T],
) -> Callable[Concatenate[AsyncEndpoint, P], Coroutine[Any, Any, T]]:
    """The `AsyncEndpoint` twin of `_invoking`: the same request, policy and injected sleep."""

    async def method(self: AsyncEndpoint, /, *args: P.args, **kwargs: P.kwargs) -> T:
        sync = self._sync
        request = build(sync.name, *args, **kwargs)
        policy = async_invocation(attempts=sync._invoke_attempts, sleep=sync._sleep)
        return finish(await policy(send, sync.backend, request), request)

    method.__doc__ = build.__doc__
    method.__signature__ = _bound_signature(build, _returns(send, finish))  # type: ignore[attr-defined]
    return method


def _in_thread(
    method: Callable[Concatenate[Endpoint, P], T],
) -> Callable[Concatenate[AsyncEndpoint, P], Coroutine[Any, Any, T]]:
    """The `AsyncEndpoint` twin of a control-plane method: the `Endpoint` method itself, run
    in a worker thread."""

    async def run(self: AsyncEndpoint, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(partial(method, self._sync, *args, **kwargs))

    functools.update_wrapper(run, method)
    return run


class Endpoint:
    """A named endpoint on one backend. Creating the handle calls nothing."""

    def __init__(
        self,
        name: str,
        backend: str | Backend | None = None,
        *,
        invoke_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        **settings: Any,
    ) -> None:
        self.name = name
        self.backend = _resolve_backend(backend, settings)
        self._invoke_attempts = invoke_attempts
        self._sleep = sleep
        self._clock = clock
        self._last: EndpointState | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        name: str,
        version: VersionSpec | Mapping[str, Any],
        *,
        backend: str | Backend | None = None,
        tags: Mapping[str, str] | None = None,
        wait: bool = True,
        timeout: float = DEFAULT_TIMEOUT_S,
        progress: Progress = None,
        **settings: Any,
    ) -> Endpoint:
        """Create endpoint `name` serving `version` with all traffic; returns its handle."""
        endpoint = cls(name, backend, **settings)
        spec = _as_version(version)
        endpoint._last = endpoint.backend.create(name, spec, tags=tags)
        if wait:
            endpoint._settle("create", timeout, progress, expect_version=spec.name)
        return endpoint

    def status(self) -> EndpointState:
        """The endpoint as the backend reports it now."""
        self._last = self.backend.get(self.name)
        return self._last

    def exists(self) -> bool:
        """True if the endpoint exists; only NotFound means no (auth failures raise)."""
        return self.backend.exists(self.name)

    def history(self) -> History:
        """Events, oldest first: creates, deploys, traffic changes, failures (a list that
        prints one line per event)."""
        return History(self.backend.history(self.name))

    def delete(self) -> None:
        """Delete the endpoint and every version endpointkit created for it."""
        self.backend.delete(self.name)
        self._last = None

    def wait(
        self, *, timeout: float = DEFAULT_TIMEOUT_S, progress: Progress = None
    ) -> EndpointState:
        """Block until InService; DeploymentFailed or Timeout otherwise."""
        return self._settle("wait", timeout, progress)

    # -- versions and traffic -------------------------------------------------------------------

    def deploy(
        self,
        version: VersionSpec | Mapping[str, Any],
        traffic: int = 0,
        *,
        wait: bool = True,
        timeout: float = DEFAULT_TIMEOUT_S,
        progress: Progress = None,
    ) -> EndpointState:
        """Add an immutable version with `traffic` percent (others keep their proportions)."""
        spec = _as_version(version)
        self._last = self.backend.deploy(self.name, spec, traffic)
        if not wait:
            return self._last
        return self._settle(f"deploy {spec.name}", timeout, progress, expect_version=spec.name)

    def set_traffic(
        self,
        traffic: TrafficSplit | Mapping[str, int],
        *,
        wait: bool = True,
        timeout: float = DEFAULT_TIMEOUT_S,
        progress: Progress = None,
    ) -> EndpointState:
        """Replace the split, e.g. `{"v1": 90, "v2": 10}`; versions not named get 0%."""
        self._last = self.backend.set_traffic(self.name, traffic)
        return self._settle("set traffic", timeout, progress) if wait else self._last

    def promote(
        self,
        version: str,
        *,
        wait: bool = True,
        timeout: float = DEFAULT_TIMEOUT_S,
        progress: Progress = None,
    ) -> EndpointState:
        """Send all traffic to `version`; the others stay deployed for a quick rollback."""
        return self.set_traffic({version: 100}, wait=wait, timeout=timeout, progress=progress)

    def rollback(
        self, *, wait: bool = True, timeout: float = DEFAULT_TIMEOUT_S, progress: Progress = None
    ) -> EndpointState:
        """Restore the traffic split in force before the latest traffic change.

        Only versions that are still deployed can get traffic back; ValidationError if there is
        no earlier split to return to.
        """
        state = self.status()
        deployed = set(state.version_names)
        for event in reversed(self.history()):
            before, after = event.traffic_before, event.traffic_after
            if before is None or after is None or not TrafficSplit(before):
                continue
            if not state.traffic.same_as(after):
                continue
            target = TrafficSplit(before).restricted_to(deployed)
            if target and not target.same_as(state.traffic):
                return self.set_traffic(target, wait=wait, timeout=timeout, progress=progress)
        raise ValidationError(
            f"endpoint {self.name!r} has no earlier traffic split to roll back to.",
            hint="Set the split you want with set_traffic() / 'endpointkit traffic'.",
            endpoint=self.name,
        )

    def rollout(
        self,
        version: VersionSpec | Mapping[str, Any],
        strategy: RolloutStrategy | Mapping[str, Any] | None = None,
        *,
        check: GateCheck | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        native: bool = False,
        on_step: Callable[[str], None] | None = None,
    ) -> RolloutResult:
        """Deploy `version` and shift traffic to it progressively (default: Canary 10%, 5 min).

        Gates are checked while each step bakes; a failed gate restores the previous split,
        removes the new version and raises RolledBack. See endpointkit.rollout.

        `native=True` (Capability.NATIVE_ROLLOUT: SageMaker) lets the platform do it: the
        endpoint's only version is replaced in place, traffic shifted by the strategy and
        rolled back by the platform if an alarm gate fires (RolledBack, with its reason).
        """
        from endpointkit.rollout import run_rollout

        return run_rollout(
            self,
            _as_version(version),
            _as_strategy(strategy),
            check=check,
            timeout=timeout,
            native=native,
            sleep=self._sleep,
            clock=self._clock,
            on_step=on_step,
        )

    def undeploy(
        self,
        version: str,
        *,
        wait: bool = True,
        timeout: float = DEFAULT_TIMEOUT_S,
        progress: Progress = None,
    ) -> EndpointState:
        """Remove a version; its traffic moves to the others first."""
        self._last = self.backend.undeploy(self.name, version)
        return self._settle(f"undeploy {version}", timeout, progress) if wait else self._last

    def scale(
        self,
        version: str,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        *,
        autoscaling: Autoscaling | Mapping[str, Any] | Literal[False] | None = None,
        wait: bool = True,
        timeout: float = DEFAULT_TIMEOUT_S,
        progress: Progress = None,
    ) -> EndpointState:
        """Change a live version's replicas in place; it keeps its name, traffic and serving.

        What is not given is kept; `autoscaling=False` turns autoscaling off, a mapping such as
        `{"target_cpu_utilization": 60}` sets it. Capability SCALING (Unsupported otherwise).
        """
        state = self.backend.get(self.name)
        current = self.backend.live_scaling(state).get(version)
        if current is None:
            live = state.version(version)
            current = live.spec.scaling if live is not None and live.spec is not None else None
        scaling = _as_scaling(current, min_replicas, max_replicas, autoscaling)
        self._last = self.backend.scale(self.name, version, scaling)
        if not wait:
            return self._last
        state = self._settle(f"scale {version}", timeout, progress)
        held = self.backend.live_scaling(state).get(version)
        if held is not None and held != self.backend.held_scaling(scaling):
            raise DeploymentFailed(
                f"scaling {version!r} on {self.name!r} to {scaling.describe()} did not take "
                f"effect: it is at {held.describe()}"
                + (f" ({state.failure_reason})." if state.failure_reason else "."),
                hint=f"See 'endpointkit history {self.name}'; the version kept serving.",
                backend=self.backend.name,
                operation="scale",
                endpoint=self.name,
                version=version,
            )
        return state

    def set_shadow(
        self,
        version: str | None,
        sample_percent: int = 100,
        *,
        wait: bool = True,
        timeout: float = DEFAULT_TIMEOUT_S,
        progress: Progress = None,
    ) -> EndpointState:
        """Mirror `sample_percent`% of requests to `version` (answers discarded); None stops."""
        shadow = Shadow(version=version, sample_percent=sample_percent) if version else None
        self._last = self.backend.set_shadow(self.name, shadow)
        return self._settle("set shadow", timeout, progress) if wait else self._last

    # -- invocation ------------------------------------------------------------------------------

    predict = _invoking(_predict_request, Backend.invoke, _as_prediction)
    invoke = _invoking(_invoke_request, Backend.invoke, _keep)
    invoke_stream = _invoking(_stream_request, Backend.invoke_stream, _keep)
    invoke_async = _invoking(_async_request, Backend.invoke_async, _keep)

    def invocation(self, inference_id: str) -> AsyncInvocation:
        """The handle of a request queued earlier under `inference_id` (by any process);
        NotFound if there is none."""
        return self.backend.find_invocation(self.name, inference_id)

    # -- internals -------------------------------------------------------------------------------

    def _settle(
        self,
        action: str,
        timeout: float,
        progress: Progress,
        *,
        expect_version: str | None = None,
    ) -> EndpointState:
        with progress_display(progress, action) as callback:
            state = self.backend.wait(self.name, timeout=timeout, progress=callback)
        self._last = state
        if expect_version is not None and state.version(expect_version) is None:
            raise DeploymentFailed(
                f"version {expect_version!r} was not deployed to {self.name!r} on "
                f"{self.backend.name}: {state.failure_reason or 'no reason given'}.",
                reason=state.failure_reason or "",
                log_hint=str(state.details.get("log_hint", "")),
                hint="The endpoint still serves its previous versions; fix the version and "
                "deploy it again.",
                backend=self.backend.name,
                operation="deploy",
                endpoint=self.name,
                version=expect_version,
            )
        return state

    # -- rendering --------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<Endpoint {self.name!r} on {self.backend.name}>"

    def __rich_repr__(self) -> Any:
        yield "name", self.name
        yield "backend", self.backend.name
        if self._last is not None:
            yield "status", str(self._last.status)
            yield "traffic", dict(self._last.traffic.root)

    def _repr_html_(self) -> str:
        """A small table of versions and traffic for notebooks (uses the last known state)."""
        state = self._last
        if state is None:
            try:
                state = self.status()
            except Exception as exc:  # a notebook repr must never raise
                return f"<b>Endpoint {html.escape(self.name)}</b>: {html.escape(str(exc))}"
        return state._repr_html_()


class AsyncEndpoint:
    """`Endpoint` for async code: the same methods with the same arguments, awaited.

    It wraps an `Endpoint` built from the same arguments, so settings, retry attempts and the
    injected sleep and clock cannot drift. Invocations use the backend's async path under the
    same retry policy; control-plane calls run the `Endpoint` method in a worker thread, so
    they never block the event loop.
    """

    def __init__(self, name: str, backend: str | Backend | None = None, **options: Any) -> None:
        """Arguments as for `Endpoint` (`invoke_attempts`, `sleep`, `clock`, settings)."""
        self._sync = Endpoint(name, backend, **options)

    @property
    def name(self) -> str:
        """The endpoint's name."""
        return self._sync.name

    @property
    def backend(self) -> Backend:
        """The backend it lives on (shared with the wrapped `Endpoint`)."""
        return self._sync.backend

    @classmethod
    async def create(
        cls,
        name: str,
        version: VersionSpec | Mapping[str, Any],
        **options: Any,
    ) -> AsyncEndpoint:
        """Arguments as for `Endpoint.create`; returns the async handle."""
        endpoint = cls.__new__(cls)
        endpoint._sync = await asyncio.to_thread(partial(Endpoint.create, name, version, **options))
        return endpoint

    status = _in_thread(Endpoint.status)
    exists = _in_thread(Endpoint.exists)
    history = _in_thread(Endpoint.history)
    delete = _in_thread(Endpoint.delete)
    wait = _in_thread(Endpoint.wait)
    deploy = _in_thread(Endpoint.deploy)
    set_traffic = _in_thread(Endpoint.set_traffic)
    promote = _in_thread(Endpoint.promote)
    rollback = _in_thread(Endpoint.rollback)
    rollout = _in_thread(Endpoint.rollout)
    undeploy = _in_thread(Endpoint.undeploy)
    scale = _in_thread(Endpoint.scale)
    set_shadow = _in_thread(Endpoint.set_shadow)
    invocation = _in_thread(Endpoint.invocation)

    predict = _awaiting(_predict_request, Backend.ainvoke, _as_prediction)
    invoke = _awaiting(_invoke_request, Backend.ainvoke, _keep)
    invoke_stream = _awaiting(_stream_request, Backend.ainvoke_stream, _keep)
    invoke_async = _awaiting(_async_request, Backend.ainvoke_async, _keep)

    def __repr__(self) -> str:
        return f"<AsyncEndpoint {self.name!r} on {self.backend.name}>"

    def _repr_html_(self) -> str:
        return self._sync._repr_html_()
