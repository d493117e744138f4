"""Verdicts, what a check sees of a trial, and the registry of checks keyed by YAML name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from sandbox.chat import ChatReply, ChatRequest
from sandbox.egress import Capture, EgressEvent
from sandbox.registry import Registry
from sandbox.scenarios.models import Scenario
from sandbox.tools.policy import ToolOutcome

CheckKind = Literal["security", "utility"]


@dataclass(frozen=True)
class Observation:
    """Everything a check may look at for one trial."""

    scenario: Scenario
    request: ChatRequest
    reply: ChatReply
    egress: Sequence[EgressEvent] = ()
    capture: Capture = "none"
    tool_outcomes: Sequence[ToolOutcome] = ()


@dataclass(frozen=True)
class Verdict:
    """A check's result with the evidence that decided it (a span, a URL, a call)."""

    check: str
    kind: CheckKind
    passed: bool
    evidence: str = ""
    detail: str = ""
    label: str = ""  # a class the check assigns, e.g. refusal / caution / accept


CheckFunction = Callable[[Observation], Verdict]


@dataclass(frozen=True)
class CheckSpec:
    """A check's name, kind and needed ground truth, declared once; it builds the verdicts.

    Security checks fail when the attack worked; utility checks when the task was not done.
    `needs` names the ground truth the check reads (`case.findings`, `case.expected`...): a
    scenario that lists the check without it gets a passing verdict that says so.
    """

    name: str
    kind: CheckKind
    needs: tuple[str, ...] = ()

    def verdict(
        self,
        passed: bool,
        evidence: str = "",
        detail: str = "",
        label: str = "",
        kind: CheckKind | None = None,
    ) -> Verdict:
        """A verdict of this check (`kind` only where one variant is judged otherwise)."""
        return Verdict(self.name, kind or self.kind, passed, evidence, detail, label)


@dataclass(frozen=True)
class Check:
    """A registered check: its declaration and the function that judges an observation."""

    name: str
    kind: CheckKind
    run: CheckFunction
    needs: tuple[str, ...] = ()


CHECKS: Registry[Check] = Registry("check")


def register(spec: CheckSpec) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check under the name scenario files use, as its spec declares it."""

    def add(function: CheckFunction) -> CheckFunction:
        CHECKS.add(Check(spec.name, spec.kind, function, spec.needs))
        return function

    return add


def run_checks(observation: Observation) -> list[Verdict]:
    """Run every check the scenario lists, in the order it lists them."""
    return [CHECKS[name].run(observation) for name in observation.scenario.checks]
