"""The workflow registry: each turns built artifacts into the chat request an integration sends."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sandbox.carriers.base import Artifact
from sandbox.chat import ChatRequest
from sandbox.scenarios.models import Scenario

WorkflowRenderer = Callable[[Scenario, Sequence[Artifact]], ChatRequest]
WORKFLOWS: dict[str, WorkflowRenderer] = {}


def register(name: str) -> Callable[[WorkflowRenderer], WorkflowRenderer]:
    """Register a workflow under the name scenario files use."""

    def add(renderer: WorkflowRenderer) -> WorkflowRenderer:
        WORKFLOWS[name] = renderer
        return renderer

    return add


def render_request(scenario: Scenario, artifacts: Sequence[Artifact]) -> ChatRequest:
    """The exact chat request the scenario's workflow would send."""
    return WORKFLOWS[scenario.workflow](scenario, artifacts)
