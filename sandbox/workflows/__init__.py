"""Workflows: how a clinical integration turns artifacts into a chat request."""

from sandbox.workflows import pacs_agent, report_draft
from sandbox.workflows.base import WORKFLOWS, register, render_request

__all__ = ["WORKFLOWS", "pacs_agent", "register", "render_request", "report_draft"]
