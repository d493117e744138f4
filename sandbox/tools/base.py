"""Simulated clinical tools: what each call returns, and which tools may send data out.

Tools are deterministic simulations built from the scenario (a PACS query result can itself
carry the payload: indirect injection through tool output). Tools that send data out
(`sends=True`) are the ones least-privilege mode withdraws once untrusted content is in the
context. `fetch_url` really attempts the connection, from inside the model's sandbox, so the
sink records it as egress of the trial.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.carriers.base import Artifact
from sandbox.registry import Registry
from sandbox.scenarios.models import Scenario

Fetcher = Callable[[str], str]  # url -> what the attempt returned; runs inside the sandbox


@dataclass
class ToolContext:
    """What the simulations may use: the scenario, its artifacts, and a sandboxed fetcher."""

    scenario: Scenario
    artifacts: Sequence[Artifact]
    fetch: Fetcher
    untrusted_seen: bool = False
    sent: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Tool:
    """A tool's simulation (its schema is part of the workflow that offers it)."""

    name: str
    run: Callable[[dict[str, Any], ToolContext], str]
    sends: bool = False  # can carry data out of the hospital
    untrusted_output: bool = False  # returns content an attacker may control


TOOLS: Registry[Tool] = Registry("tool")


def register(tool: Tool) -> Tool:
    """Add a tool to the registry under its name (a name already taken is refused)."""
    return TOOLS.add(tool)


def parse_arguments(text: str) -> dict[str, Any] | None:
    """The call's arguments as a dict, or None when the model wrote invalid JSON."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
