"""The shared Backend scenario suite (after fsspec's abstract tests).

A backend joins by subclassing `BackendSuite` in a `test_<backend>.py` module and providing
the `backend` fixture (a fresh, isolated Backend). Versions are real model directories served
by the same predictor code on every backend: a version answers with its own name, so routing
is observable. What a backend cannot do it declares in `capabilities`, and the suite then
checks that it raises Unsupported instead.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from endpointkit import Endpoint, EndpointSpec, VersionSpec, apply, plan
from endpointkit.adapters.base import Backend, Capability
from endpointkit.errors import (
    AlreadyExists,
    Conflict,
    DeploymentFailed,
    ModelError,
    NotFound,
    Unsupported,
    ValidationError,
)
from endpointkit.planner import destroy
from endpointkit.spec import HealthCheck, Scaling, Shadow, Status
from tests.streams import assert_streamed, body, timed_frames

MODELS = Path(__file__).parent / "models"
_counter = itertools.count()


class Versions:
    """Makes versions backed by real model directories (see models/echo_predictor.py)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def make(self, name: str, mode: str = "echo") -> VersionSpec:
        model_dir = self.root / f"{name}-{mode}"
        if not model_dir.exists():
            model_dir.mkdir(parents=True)
            shutil.copy(MODELS / "echo_predictor.py", model_dir / "echo_predictor.py")
            (model_dir / "answer.txt").write_text(name)
            (model_dir / "mode.txt").write_text(mode)
        return VersionSpec(name=name, model=str(model_dir), predictor="echo_predictor:Echo")

    def echo(self, name: str) -> VersionSpec:
        """Answers every instance with its own name."""
        return self.make(name)

    def rejecting(self, name: str) -> VersionSpec:
        """Deploys fine, then rejects every request as invalid input."""
        return self.make(name, "reject")

    def broken(self, name: str) -> VersionSpec:
        """Fails to load, so its deployment fails."""
        return self.make(name, "broken")

    def slow(self, name: str, load_s: float, health: HealthCheck | None = None) -> VersionSpec:
        """Takes `load_s` seconds to load (see models/slow_predictor.py), then answers like
        `echo`; `health` sets its startup budget."""
        model_dir = self.root / f"{name}-slow-{load_s:g}"
        if not model_dir.exists():
            model_dir.mkdir(parents=True)
            shutil.copy(MODELS / "slow_predictor.py", model_dir / "slow_predictor.py")
            (model_dir / "answer.txt").write_text(name)
            (model_dir / "load_seconds.txt").write_text(f"{load_s:g}")
        return VersionSpec(
            name=name, model=str(model_dir), predictor="slow_predictor:Slow", health=health
        )


class BackendSuite:
    """Scenarios every backend must pass. Subclasses provide the `backend` fixture."""

    #: Requests sent when checking a split; enough that a 10% share is all but certain to show.
    ROUTING_SAMPLES = 120

    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError("a backend's test module provides this fixture")

    @pytest.fixture
    def versions(self, tmp_path: Path) -> Versions:
        return Versions(tmp_path / "models")

    @pytest.fixture
    def name(self) -> str:
        return f"conf-{next(_counter)}"

    @pytest.fixture
    def endpoint(self, backend: Backend, versions: Versions, name: str) -> Endpoint:
        ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=120)
        yield ep
        if backend.exists(name):
            backend.delete(name)
            backend.wait_deleted(name, timeout=120)

    # -- helpers ---------------------------------------------------------------------------------

    def served(self, endpoint: Endpoint, n: int | None = None) -> Counter[str | None]:
        counts: Counter[str | None] = Counter()
        for _ in range(n or self.ROUTING_SAMPLES):
            result = endpoint.predict([[1.0, 2.0]])
            assert result.predictions == [result.version]
            counts[result.version] += 1
        return counts

    def supports(self, backend: Backend, capability: Capability) -> bool:
        return capability in backend.capabilities

    # -- lifecycle -------------------------------------------------------------------------------

    def test_create_get_list_delete(self, backend: Backend, versions: Versions, name: str) -> None:
        ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=120)
        state = ep.status()
        assert state.status is Status.IN_SERVICE
        assert state.version_names == ["v1"]
        assert state.traffic.serving() == {"v1": 100}
        assert state.version("v1") is not None
        assert state.version("v1").spec_hash == versions.echo("v1").spec_hash  # type: ignore[union-attr]
        assert name in [e.name for e in backend.list_endpoints()]
        assert ep.predict([[1.0]]).predictions == ["v1"]
        ep.delete()
        backend.wait_deleted(name, timeout=120)
        assert not backend.exists(name)
        assert name not in [e.name for e in backend.list_endpoints()]

    def test_missing_endpoint_is_not_found(self, backend: Backend) -> None:
        with pytest.raises(NotFound, match="not found"):
            backend.get("conf-never-created")
        with pytest.raises(NotFound):
            backend.delete("conf-never-created")
        assert not backend.exists("conf-never-created")

    def test_create_twice_is_already_exists(
        self, endpoint: Endpoint, backend: Backend, versions: Versions
    ) -> None:
        with pytest.raises(AlreadyExists):
            backend.create(endpoint.name, versions.echo("v1"))

    # -- versions and traffic --------------------------------------------------------------------

    def test_canary_shift_promote_undeploy(self, endpoint: Endpoint, versions: Versions) -> None:
        state = endpoint.deploy(versions.echo("v2"), traffic=10, timeout=120)
        assert state.traffic.serving() == {"v1": 90, "v2": 10}
        counts = self.served(endpoint)
        assert counts["v1"] > counts["v2"] > 0
        endpoint.set_traffic({"v1": 50, "v2": 50}, timeout=120)
        counts = self.served(endpoint)
        assert counts["v1"] > 0
        assert counts["v2"] > 0
        endpoint.promote("v2", timeout=120)
        assert set(self.served(endpoint, 20)) == {"v2"}
        state = endpoint.undeploy("v1", timeout=120)
        assert state.version_names == ["v2"]
        assert state.traffic.serving() == {"v2": 100}

    def test_zero_traffic_version_stays_deployed_and_idle(
        self, endpoint: Endpoint, versions: Versions
    ) -> None:
        state = endpoint.deploy(versions.echo("v2"), traffic=0, timeout=120)
        assert state.version_names == ["v1", "v2"]
        assert set(self.served(endpoint, 30)) == {"v1"}

    def test_rollback_restores_the_previous_split(
        self, endpoint: Endpoint, versions: Versions
    ) -> None:
        endpoint.deploy(versions.echo("v2"), traffic=20, timeout=120)
        endpoint.promote("v2", timeout=120)
        state = endpoint.rollback(timeout=120)
        assert state.traffic.serving() == {"v1": 80, "v2": 20}

    def test_target_version(self, endpoint: Endpoint, backend: Backend, versions: Versions) -> None:
        endpoint.deploy(versions.echo("v2"), traffic=0, timeout=120)
        if not self.supports(backend, Capability.TARGET_VERSION):
            with pytest.raises(Unsupported, match=backend.name):
                endpoint.predict([[1.0]], version="v2")
            return
        for _ in range(5):
            assert endpoint.predict([[1.0]], version="v2").version == "v2"

    def test_shadow(self, endpoint: Endpoint, backend: Backend, versions: Versions) -> None:
        endpoint.deploy(versions.echo("v3"), traffic=0, timeout=120)
        if not self.supports(backend, Capability.SHADOW):
            with pytest.raises(Unsupported, match=backend.name):
                endpoint.set_shadow("v3", 50)
            return
        state = endpoint.set_shadow("v3", 50, timeout=120)
        assert state.shadow == Shadow(version="v3", sample_percent=50)
        assert set(self.served(endpoint, 30)) == {"v1"}  # the shadow never answers
        with pytest.raises(ValidationError, match="shadow"):
            endpoint.set_traffic({"v1": 50, "v3": 50})
        with pytest.raises(Conflict, match="shadow"):
            endpoint.undeploy("v3")
        assert endpoint.set_shadow(None, timeout=120).shadow is None

    def test_redeploy_is_idempotent_and_versions_are_immutable(
        self, endpoint: Endpoint, versions: Versions
    ) -> None:
        events = len(endpoint.history())
        endpoint.deploy(versions.echo("v1"), traffic=100, timeout=120)
        assert len(endpoint.history()) == events
        with pytest.raises(Conflict, match="immutable"):
            endpoint.deploy(versions.rejecting("v1"))

    def test_scaling_changes_in_place(
        self, endpoint: Endpoint, backend: Backend, versions: Versions
    ) -> None:
        """A spec that only changes replicas plans one "scale" step; the version keeps its name,
        hash and traffic, and answers throughout."""
        endpoint.deploy(versions.echo("v2"), traffic=50, timeout=120)
        two = versions.echo("v1").with_scaling(Scaling(min_replicas=2, max_replicas=2))
        spec = EndpointSpec(
            name=endpoint.name,
            backend=backend.name,
            versions=[two, versions.echo("v2")],
            traffic={"v1": 50, "v2": 50},
        )
        if not self.supports(backend, Capability.SCALING):
            with pytest.raises((Unsupported, ValidationError), match=backend.name):
                plan(spec, backend)
            return
        the_plan = plan(spec, backend)
        assert [a.kind for a in the_plan.actions] == ["scale"], the_plan.diff()
        events = len(endpoint.history())
        state = apply(the_plan, backend, timeout=120).state
        assert state is not None
        live = state.version("v1")
        assert live is not None
        assert live.spec_hash == versions.echo("v1").spec_hash
        assert backend.live_scaling(state)["v1"].min_replicas == 2
        assert state.traffic.serving() == {"v1": 50, "v2": 50}
        assert [e.kind for e in endpoint.history()[events:]] == ["scaled"]
        assert not plan(spec, backend), plan(spec, backend).diff()
        assert set(self.served(endpoint, 30)) == {"v1", "v2"}
        with pytest.raises(NotFound):
            endpoint.scale("v9", 2)
        back = endpoint.scale("v1", 1, 1, timeout=120)
        assert backend.live_scaling(back)["v1"].min_replicas == 1

    def test_invalid_traffic_changes_nothing(self, endpoint: Endpoint, versions: Versions) -> None:
        endpoint.deploy(versions.echo("v2"), traffic=30, timeout=120)
        with pytest.raises(ValidationError, match="sum to 100"):
            endpoint.set_traffic({"v1": 60, "v2": 60})
        with pytest.raises(NotFound, match="v9"):
            endpoint.set_traffic({"v1": 50, "v9": 50})
        endpoint.promote("v2", timeout=120)
        with pytest.raises(ValidationError, match="serves all traffic"):
            endpoint.undeploy("v2")
        assert endpoint.status().traffic.serving() == {"v2": 100}

    def test_undeploy_last_version_is_refused(self, endpoint: Endpoint) -> None:
        with pytest.raises(Conflict, match="last version"):
            endpoint.undeploy("v1")

    # -- failures --------------------------------------------------------------------------------

    def test_failed_deploy_reports_reason_and_keeps_serving(
        self, endpoint: Endpoint, versions: Versions
    ) -> None:
        with pytest.raises(DeploymentFailed) as caught:
            endpoint.deploy(versions.broken("v2"), traffic=10, timeout=120)
        assert "cannot load weights" in str(caught.value)
        state = endpoint.status()
        assert state.version_names == ["v1"]
        assert state.traffic.serving() == {"v1": 100}
        assert endpoint.predict([[1.0]]).predictions == ["v1"]
        assert any(e.kind == "failed" for e in endpoint.history())

    def test_model_error_keeps_status_and_endpoint_keeps_serving(
        self, endpoint: Endpoint, versions: Versions
    ) -> None:
        endpoint.deploy(versions.rejecting("v2"), traffic=100, timeout=120)
        with pytest.raises(ModelError) as caught:
            endpoint.predict([[1.0]])
        assert caught.value.status is not None
        assert 400 <= caught.value.status < 500
        assert "rejects every input" in caught.value.body_excerpt
        endpoint.promote("v1", timeout=120)
        assert endpoint.predict([[1.0]]).predictions == ["v1"]

    def test_unsupported_version_features_raise_before_any_change(
        self, endpoint: Endpoint, backend: Backend, versions: Versions
    ) -> None:
        base = versions.echo("v2").model_dump()
        variants = {
            Capability.SERVERLESS: {"serverless": {"memory_mb": 2048}},
            Capability.ASYNC_INFERENCE: {"async_inference": {"output_path": "s3://bucket/out"}},
        }
        for capability, extra in variants.items():
            if capability in backend.capabilities:
                continue
            version = VersionSpec.model_validate({**base, **extra})
            with pytest.raises(Unsupported, match=backend.name):
                endpoint.deploy(version)
        assert endpoint.status().version_names == ["v1"]

    # -- response streaming ----------------------------------------------------------------------

    def test_invoke_stream(self, endpoint: Endpoint, backend: Backend, versions: Versions) -> None:
        request = body([[1.0], [2.0], [3.0], [4.0]], gap_s=0.15)
        if not self.supports(backend, Capability.STREAMING):
            with pytest.raises(Unsupported, match=backend.name):
                endpoint.invoke_stream(request)
            return
        expected = [{"index": i, "prediction": "v1"} for i in range(4)]
        with endpoint.invoke_stream(request) as stream:
            assert stream.version == "v1"
            assert stream.content_type.startswith("text/event-stream")
            frames = timed_frames(stream)
        assert [f for _, f in frames] == expected
        assert_streamed([t for t, _ in frames], 0.15)  # each item arrived as it was made
        with endpoint.invoke_stream(request, accept="application/jsonlines") as stream:
            assert [f for _, f in timed_frames(stream, sse=False)] == expected
        # Without a streaming Accept the whole answer comes, as from invoke.
        whole = endpoint.invoke_stream(body([[1.0], [2.0]]), accept="application/json").read()
        assert json.loads(whole) == {"predictions": ["v1", "v1"]}

    def test_invoke_stream_failures(
        self, endpoint: Endpoint, backend: Backend, versions: Versions
    ) -> None:
        if not self.supports(backend, Capability.STREAMING):
            return
        # A failure mid-stream raises from the iteration, after the items before it.
        with endpoint.invoke_stream(body([[1.0], "boom"])) as stream:
            got: list[bytes] = []
            with pytest.raises(ModelError):
                got.extend(stream)  # keeps what arrived before the failure
        assert b'"index":0' in b"".join(got)
        # A failure before the first item is the model's ordinary error, status and all.
        endpoint.deploy(versions.rejecting("v2"), traffic=100, timeout=120)
        with pytest.raises(ModelError) as caught:
            endpoint.invoke_stream(body([[1.0]]))
        assert caught.value.status is not None
        assert 400 <= caught.value.status < 500
        assert "rejects every input" in caught.value.body_excerpt
        endpoint.promote("v1", timeout=120)
        assert endpoint.invoke_stream(body([[1.0]])).version == "v1"  # still serving

    # -- history and plan/apply ------------------------------------------------------------------

    def test_history_records_changes(self, endpoint: Endpoint, versions: Versions) -> None:
        endpoint.deploy(versions.echo("v2"), traffic=25, timeout=120)
        endpoint.set_traffic({"v2": 100}, timeout=120)
        events = endpoint.history()
        kinds = [e.kind for e in events]
        assert kinds[0] == "created"
        assert "deployed" in kinds
        assert events[-1].traffic_after is not None
        assert {k: v for k, v in events[-1].traffic_after.items() if v} == {"v2": 100}
        assert events == sorted(events, key=lambda e: e.time)

    def test_plan_apply_is_idempotent(
        self, backend: Backend, versions: Versions, name: str
    ) -> None:
        def spec(traffic: dict[str, int]) -> EndpointSpec:
            return EndpointSpec(
                name=name,
                backend=backend.name,
                versions=[versions.echo(v) for v in traffic],
                traffic=traffic,
            )

        try:
            first = spec({"v1": 100})
            apply(first, backend, timeout=120)
            assert not plan(first, backend)
            second = spec({"v1": 90, "v2": 10})
            assert [a.kind for a in plan(second, backend).actions] == ["deploy", "traffic"]
            apply(second, backend, timeout=120)
            assert not plan(second, backend)
            third = spec({"v2": 100})
            assert [a.kind for a in plan(third, backend).actions] == ["traffic", "undeploy"]
            state = apply(third, backend, timeout=120).state
            assert state is not None
            assert state.version_names == ["v2"]
            assert not plan(third, backend)
        finally:
            destroy(name, backend, timeout=120)
        assert not backend.exists(name)
