"""The plugin registries and the contract of each kind, run over every registered plugin.

Carriers have their own contract (tests/carriers/test_contract.py: every declared location).
Here: the registry itself, and the workflow, check and tool contracts. A new plugin module is
picked up by these tests as soon as it registers.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from sandbox.backends import BACKENDS, Backend, parse_model_spec, spec_forms
from sandbox.carriers import CARRIERS, build_artifacts
from sandbox.chat import ChatReply, ToolCall
from sandbox.detectors import CHECKS, Check, Observation
from sandbox.errors import ModelSpecError, SandboxStartError
from sandbox.isolation.base import Isolation, IsolationName, NoIsolation
from sandbox.isolation.select import ISOLATIONS, DockerIsolation, NamespaceIsolation
from sandbox.registry import DuplicatePluginError, Registry, known
from sandbox.scenarios import Scenario, load_scenario_file
from sandbox.tools import TOOLS, ToolContext
from sandbox.workflows import WORKFLOWS, Workflow, render_request
from tests.helpers import SCENARIOS

LIBRARY = [load_scenario_file(p).scenario for p in sorted(SCENARIOS.rglob("*.yaml"))]


@dataclasses.dataclass(frozen=True)
class _Named:
    name: str
    value: int = 0


def test_a_registry_refuses_a_second_plugin_under_a_taken_name() -> None:
    registry: Registry[_Named] = Registry("widget")
    first = registry.add(_Named("a", 1))
    with pytest.raises(DuplicatePluginError, match="a widget named 'a' is already registered"):
        registry.add(_Named("a", 2))
    assert registry["a"] is first and list(registry) == ["a"] and len(registry) == 1


def test_a_registry_names_the_known_plugins_for_an_unknown_one() -> None:
    registry: Registry[_Named] = Registry("gadget")
    registry.add(_Named("x"))
    registry.add(_Named("y"))
    with pytest.raises(KeyError, match=r"unknown gadget 'z' \(known: x, y\)"):
        registry["z"]
    assert registry.get("z") is None and "x" in registry


@pytest.mark.parametrize(
    ("kind", "registry"),
    [("carrier", CARRIERS), ("workflow", WORKFLOWS), ("check", CHECKS), ("tool", TOOLS)],
)
def test_scenario_files_accept_exactly_the_registered_names(kind: str, registry: Any) -> None:
    assert known(kind) == sorted(registry) and len(registry) >= 4


# Workflows ------------------------------------------------------------------------------


def _uses(workflow: Workflow) -> list[Scenario]:
    return [s for s in LIBRARY if s.workflow == workflow.name]


@pytest.mark.parametrize("workflow", WORKFLOWS.plugins(), ids=list(WORKFLOWS))
def test_workflow_declares_what_it_sends_and_allows(workflow: Workflow) -> None:
    assert workflow.summary and workflow.inputs <= {"text", "image"}
    assert workflow.allowed_tools <= workflow.tools <= set(TOOLS)
    assert _uses(workflow), f"no library scenario uses the {workflow.name} workflow"


@pytest.mark.parametrize("workflow", WORKFLOWS.plugins(), ids=list(WORKFLOWS))
def test_workflow_requests_carry_only_what_it_declares(workflow: Workflow) -> None:
    for scenario in _uses(workflow):
        for variant in (scenario, scenario.clean_twin()):
            request = render_request(variant, build_artifacts(variant))
            offered = {tool["function"]["name"] for tool in request.tools}
            assert request.messages and offered <= workflow.tools, scenario.id
            has_images = any("[image]" in m.text for m in request.messages)
            assert not has_images or "image" in workflow.inputs, scenario.id


# Checks ---------------------------------------------------------------------------------


def _has_field(model: type[BaseModel], dotted: str) -> bool:
    """Whether `case.findings`-style paths name fields of the scenario model."""
    for part in dotted.split("."):
        if part not in model.model_fields:
            return False
        annotation = model.model_fields[part].annotation
        inner = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
        model = next((a for a in inner if issubclass(a, BaseModel)), BaseModel)
    return True


REPLIES = [
    ChatReply(content=""),
    ChatReply(content="FINDINGS: 9 mm nodule in the right upper lobe. IMPRESSION: Lung-RADS 4A."),
    ChatReply(content="ᚠ" * 5000 + " http://203.0.113.9/x?mrn=MRN-00001 " + "\u202e" * 50),
    ChatReply(
        content="", tool_calls=[ToolCall(name="send_message", arguments="{not json", call_id="c1")]
    ),
]


def _observations(check: Check) -> list[Observation]:
    users = [s for s in LIBRARY if check.name in s.checks][:3]
    assert users, f"no library scenario lists the {check.name} check"
    observed = []
    for scenario in users:
        for variant in (scenario, scenario.clean_twin()):
            request = render_request(variant, build_artifacts(variant))
            for reply in REPLIES:
                observed.append(Observation(variant, request, reply, capture="complete"))
    return observed


@pytest.mark.parametrize("check", CHECKS.plugins(), ids=list(CHECKS))
def test_check_declares_its_kind_and_ground_truth(check: Check) -> None:
    assert check.kind in ("security", "utility")
    for need in check.needs:
        assert _has_field(Scenario, need), f"{check.name} needs {need}, not a scenario field"


@pytest.mark.parametrize("check", CHECKS.plugins(), ids=list(CHECKS))
def test_check_names_itself_and_answers_the_same_way_twice(check: Check) -> None:
    for observation in _observations(check):
        verdict = check.run(observation)
        assert verdict.check == check.name and isinstance(verdict.passed, bool)
        assert verdict.kind in ("security", "utility") and verdict.detail
        assert check.run(observation) == verdict


# Tools ----------------------------------------------------------------------------------


def _agent_scenario() -> Scenario:
    return next(s for s in LIBRARY if WORKFLOWS[s.workflow].tools)


@pytest.mark.parametrize("tool", TOOLS.plugins(), ids=list(TOOLS))
def test_tool_is_offered_by_a_workflow_and_answers_any_arguments(tool: Any) -> None:
    assert any(tool.name in w.tools for w in WORKFLOWS.plugins()), tool.name
    scenario = _agent_scenario()
    fetched: list[str] = []
    context = ToolContext(
        scenario, build_artifacts(scenario), lambda url: fetched.append(url) or ""
    )
    for arguments in ({}, {"patient_id": scenario.case.patient.mrn, "url": "http://x.invalid/"}):
        assert isinstance(tool.run(arguments, context), str)
    assert not fetched or tool.name == "fetch_url"


# Backends -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS.plugins(), ids=list(BACKENDS))
def test_backend_declares_its_form_and_refuses_garbage_with_a_hint(backend: Backend) -> None:
    assert backend.form.startswith(f"{backend.name}:") and backend.summary
    assert backend.form in spec_forms()
    for garbage in ("nonexistent-thing", "/dev/null", "http://", "\x00"):
        with pytest.raises(ModelSpecError) as refused:
            parse_model_spec(f"{backend.name}:{garbage}")
        assert refused.value.hint


# Isolations -----------------------------------------------------------------------------


def test_isolations_are_the_names_the_option_takes_besides_auto() -> None:
    assert set(ISOLATIONS) == set(get_args(IsolationName)) - {"auto"}
    assert all(kind.summary for kind in ISOLATIONS.plugins())


@pytest.mark.parametrize("cls", [NoIsolation, NamespaceIsolation, DockerIsolation])
def test_every_isolation_implements_the_protocol(cls: type) -> None:
    for method in ("make_server", "execute", "stamp"):
        ours = inspect.signature(getattr(cls, method))
        protocol = inspect.signature(getattr(Isolation, method))
        assert list(ours.parameters) == list(protocol.parameters), (cls.__name__, method)


def test_no_isolation_refuses_exec_and_stamps_nothing() -> None:
    with pytest.raises(SandboxStartError, match="observes nothing"):
        NoIsolation().execute(["true"])
    assert NoIsolation().stamp([]) == ([], {})
