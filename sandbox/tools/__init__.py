"""Simulated clinical tools, their policy, and least-privilege mode."""

from sandbox.tools.base import TOOLS, Tool, ToolContext
from sandbox.tools.policy import ToolOutcome, allowed_tools, execute, not_offered, offered

__all__ = [
    "TOOLS",
    "Tool",
    "ToolContext",
    "ToolOutcome",
    "allowed_tools",
    "execute",
    "not_offered",
    "offered",
]
