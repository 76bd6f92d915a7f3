"""The shared Backend scenario suite (after fsspec's abstract tests).

A backend joins by subclassing `BackendSuite` in a `test_<backend>.py` module and providing
the `backend` fixture (a fresh, isolated Backend). Versions are real model directories served
by the same predictor code on every backend: a version answers with its own name, so routing
is observable. The scenarios live in tests/conformance/scenarios/, one mixin per concern. What
a backend cannot do it declares in `capabilities`: scenarios that need it are skipped, naming
the capability, and their counterparts check that the backend raises Unsupported instead.
"""

from __future__ import annotations

from tests.conformance.scenarios.asynchronous import AsyncScenarios
from tests.conformance.scenarios.base import (
    MODELS,
    Versions,
    lacks,
    needs,
    require,
    require_absent,
)
from tests.conformance.scenarios.failures import FailureScenarios
from tests.conformance.scenarios.lifecycle import LifecycleScenarios
from tests.conformance.scenarios.plan_apply import PlanApplyScenarios
from tests.conformance.scenarios.rollouts import RolloutScenarios
from tests.conformance.scenarios.scaling import ScalingScenarios
from tests.conformance.scenarios.shadow import ShadowScenarios
from tests.conformance.scenarios.streaming import StreamingScenarios
from tests.conformance.scenarios.traffic import TrafficScenarios

__all__ = ["MODELS", "BackendSuite", "Versions", "lacks", "needs", "require", "require_absent"]


class BackendSuite(
    LifecycleScenarios,
    TrafficScenarios,
    ShadowScenarios,
    StreamingScenarios,
    ScalingScenarios,
    FailureScenarios,
    PlanApplyScenarios,
    RolloutScenarios,
    AsyncScenarios,
):
    """Scenarios every backend must pass. Subclasses provide the `backend` fixture."""
