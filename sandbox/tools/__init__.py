"""Simulated clinical tools, their policy, and least-privilege mode."""

from sandbox.registry import discover
from sandbox.tools.base import TOOLS, Tool, ToolContext
from sandbox.tools.policy import ToolOutcome, allowed_tools, execute, not_offered, offered

discover(__name__, __path__)

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
