"""Create, read, list and delete endpoints; redeploys, immutability and history."""

from __future__ import annotations

import pytest

from endpointkit import Endpoint
from endpointkit.adapters.base import Backend
from endpointkit.errors import AlreadyExists, Conflict, NotFound
from endpointkit.state import Status
from tests.conformance.scenarios.base import SuiteBase, Versions


class LifecycleScenarios(SuiteBase):
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

    def test_a_deleted_endpoints_history_stays_and_a_new_one_of_its_name_starts_afresh(
        self, backend: Backend, versions: Versions, name: str
    ) -> None:
        """A deleted endpoint's history stays readable; a new endpoint of the same name
        starts its own (the local and SageMaker backends appended to the old one, so the
        quickstart's second run printed the first run's events too)."""
        ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=120)
        ep.delete()
        backend.wait_deleted(name, timeout=120)
        assert [e.kind for e in ep.history()][-1] == "deleted"
        ep = Endpoint.create(name, versions.echo("v1"), backend=backend, timeout=120)
        kinds = [e.kind for e in ep.history() if e.kind != "health"]
        assert kinds == ["created", "deployed"], kinds
        ep.delete()
        backend.wait_deleted(name, timeout=120)

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

    def test_redeploy_is_idempotent_and_versions_are_immutable(
        self, endpoint: Endpoint, versions: Versions
    ) -> None:
        events = len(endpoint.history())
        endpoint.deploy(versions.echo("v1"), traffic=100, timeout=120)
        assert len(endpoint.history()) == events
        with pytest.raises(Conflict, match="immutable"):
            endpoint.deploy(versions.rejecting("v1"))

    def test_undeploy_last_version_is_refused(self, endpoint: Endpoint) -> None:
        with pytest.raises(Conflict, match="last version"):
            endpoint.undeploy("v1")

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

    def test_history_reads_the_same_on_every_backend(
        self, endpoint: Endpoint, versions: Versions
    ) -> None:
        """Every event names what changed, and backends word the same change the same way
        (promote and rollback once both read "traffic changed"; one backend said "deployed"
        where another said "deployed with 100% of traffic")."""
        from endpointkit.render import event_message

        endpoint.deploy(versions.echo("v2"), traffic=10, timeout=120)
        endpoint.set_traffic({"v1": 50, "v2": 50}, timeout=120)
        endpoint.promote("v2", timeout=120)
        endpoint.rollback(timeout=120)
        endpoint.undeploy("v1", timeout=120)
        lines = [event_message(e) for e in endpoint.history() if e.kind not in ("health",)]
        assert lines == [
            "endpoint created",
            "deployed v1: no traffic -> v1=100%",
            "deployed v2: v1=100% -> v1=90%, v2=10%",
            "traffic: v1=90%, v2=10% -> v1=50%, v2=50%",
            "traffic: v1=50%, v2=50% -> v2=100%",
            "traffic: v2=100% -> v1=50%, v2=50%",
            "undeployed v1: v1=50%, v2=50% -> v2=100%",
        ]
