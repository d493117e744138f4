"""Workflows: how a clinical integration turns artifacts into a chat request."""

from sandbox.workflows import report_draft
from sandbox.workflows.base import WORKFLOWS, register, render_request

__all__ = ["WORKFLOWS", "register", "render_request", "report_draft"]
