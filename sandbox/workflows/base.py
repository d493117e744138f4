"""What a workflow is, and the registry keyed by the name scenario files use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sandbox.carriers.base import Artifact
from sandbox.chat import ChatRequest
from sandbox.registry import Registry
from sandbox.scenarios.models import Scenario

WorkflowRenderer = Callable[[Scenario, Sequence[Artifact]], ChatRequest]


@dataclass(frozen=True)
class Workflow:
    """A registered workflow: how it renders, what a model must take, which calls it allows.

    `inputs` are what the request carries ('text', 'image'); a model that cannot take one of
    them skips the trial. `allowed_tools` is the default tool policy (a scenario may override
    it with `agent.allowed_tools`); `tools` the tools the request offers.
    """

    name: str
    render: WorkflowRenderer
    inputs: frozenset[str]
    tools: frozenset[str]
    allowed_tools: frozenset[str]
    summary: str


WORKFLOWS: Registry[Workflow] = Registry("workflow")


def register(
    name: str,
    summary: str,
    inputs: Sequence[str] = ("text",),
    tools: Sequence[str] = (),
    allowed_tools: Sequence[str] = (),
) -> Callable[[WorkflowRenderer], WorkflowRenderer]:
    """Register a workflow under the name scenario files use, with what it declares."""

    def add(render: WorkflowRenderer) -> WorkflowRenderer:
        declared = (frozenset(inputs), frozenset(tools), frozenset(allowed_tools))
        WORKFLOWS.add(Workflow(name, render, *declared, summary))
        return render

    return add


def missing_inputs(workflow: str, model_inputs: Sequence[str]) -> list[str]:
    """The inputs a workflow sends that a model cannot take (e.g. ['image'])."""
    return sorted(WORKFLOWS[workflow].inputs - set(model_inputs))


def render_request(scenario: Scenario, artifacts: Sequence[Artifact]) -> ChatRequest:
    """The exact chat request the scenario's workflow would send."""
    return WORKFLOWS[scenario.workflow].render(scenario, artifacts)
