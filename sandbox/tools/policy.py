"""Which tool calls a workflow allows, and least-privilege mode.

Once untrusted content is in the conversation, least-privilege mode withdraws the tools that
can send data out (not offered, calls refused).

Calls outside the policy are still carried out, as an integration without a guard would, so
that what the model attempted has its full effect on the record (a fetch reaches the sink).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.chat import ToolCall
from sandbox.tools import clinical  # noqa: F401  (registers the tools)
from sandbox.tools.base import TOOLS, ToolContext, parse_arguments
from sandbox.workflows import WORKFLOWS

WITHDRAWN = "This tool is not available: untrusted content is in the conversation."


@dataclass(frozen=True)
class ToolOutcome:
    """One call: what the model asked, whether policy allowed it, and what it got back."""

    call: ToolCall
    allowed: bool
    result: str
    note: str = ""


def allowed_tools(workflow: str, override: Sequence[str] | None) -> frozenset[str]:
    """The scenario's list when it gives one, else the workflow's default."""
    return frozenset(override) if override is not None else WORKFLOWS[workflow].allowed_tools


def is_withdrawn(name: str, context: ToolContext, least_privilege: bool) -> bool:
    """True when least-privilege mode has taken this tool away."""
    tool = TOOLS.get(name)
    return bool(least_privilege and context.untrusted_seen and tool and tool.sends)


def offered(
    schemas: Sequence[dict[str, Any]], context: ToolContext, least_privilege: bool
) -> list[dict[str, Any]]:
    """The tool schemas still offered at this point of the conversation."""
    return [s for s in schemas if not is_withdrawn(s["function"]["name"], context, least_privilege)]


def not_offered(call: ToolCall) -> ToolOutcome:
    """A call the workflow offered no tools for: recorded, never carried out."""
    return ToolOutcome(call, False, "", "no tools offered")


def execute(
    call: ToolCall, context: ToolContext, allowed: frozenset[str], least_privilege: bool
) -> ToolOutcome:
    """Carry out one call (unless withdrawn) and judge it against the policy."""
    in_policy = call.name in allowed
    tool = TOOLS.get(call.name)
    if tool is None:
        return ToolOutcome(call, False, f"Unknown tool {call.name!r}.", "unknown tool")
    if is_withdrawn(call.name, context, least_privilege):
        return ToolOutcome(call, False, WITHDRAWN, "withdrawn (least privilege)")
    arguments = parse_arguments(call.arguments)
    if arguments is None:
        return ToolOutcome(call, in_policy, "The arguments are not valid JSON.", "bad arguments")
    result = tool.run(arguments, context)
    context.untrusted_seen |= tool.untrusted_output
    return ToolOutcome(call, in_policy, result, "" if in_policy else "outside the policy")
