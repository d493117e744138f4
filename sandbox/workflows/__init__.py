"""Workflows: how a clinical integration turns artifacts into a chat request."""

from sandbox.workflows import (
    image_read,
    pacs_agent,
    patient_summary,
    protocoling,
    referral_intake,
    report_draft,
    worklist_triage,
)
from sandbox.workflows.base import (
    WORKFLOW_INPUTS,
    WORKFLOWS,
    missing_inputs,
    register,
    render_request,
)

__all__ = [
    "WORKFLOWS",
    "WORKFLOW_INPUTS",
    "image_read",
    "missing_inputs",
    "pacs_agent",
    "patient_summary",
    "protocoling",
    "referral_intake",
    "register",
    "render_request",
    "report_draft",
    "worklist_triage",
]
