"""Workflows: how a clinical integration turns artifacts into a chat request.

Every module of this package is imported here, so a new workflow registers by existing.
"""

from sandbox.registry import discover
from sandbox.workflows.base import WORKFLOWS, Workflow, missing_inputs, register, render_request

discover(__name__, __path__)

__all__ = ["WORKFLOWS", "Workflow", "missing_inputs", "register", "render_request"]
