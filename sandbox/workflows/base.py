"""The workflow registry: each turns built artifacts into the chat request an integration sends."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sandbox.carriers.base import Artifact
from sandbox.chat import ChatRequest
from sandbox.scenarios.models import Scenario

WorkflowRenderer = Callable[[Scenario, Sequence[Artifact]], ChatRequest]
WORKFLOWS: dict[str, WorkflowRenderer] = {}
WORKFLOW_INPUTS: dict[str, frozenset[str]] = {}  # what a model must take: text, image


def register(
    name: str, inputs: Sequence[str] = ("text",)
) -> Callable[[WorkflowRenderer], WorkflowRenderer]:
    """Register a workflow under the name scenario files use, with the inputs it sends."""

    def add(renderer: WorkflowRenderer) -> WorkflowRenderer:
        WORKFLOWS[name] = renderer
        WORKFLOW_INPUTS[name] = frozenset(inputs)
        return renderer

    return add


def missing_inputs(workflow: str, model_inputs: Sequence[str]) -> list[str]:
    """The inputs a workflow sends that a model cannot take (e.g. ['image'])."""
    return sorted(WORKFLOW_INPUTS[workflow] - set(model_inputs))


def render_request(scenario: Scenario, artifacts: Sequence[Artifact]) -> ChatRequest:
    """The exact chat request the scenario's workflow would send."""
    return WORKFLOWS[scenario.workflow](scenario, artifacts)
