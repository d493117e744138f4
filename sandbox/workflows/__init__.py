"""Workflows: how a clinical integration turns artifacts into a chat request."""

from sandbox.workflows import (
    pacs_agent,
    patient_summary,
    protocoling,
    referral_intake,
    report_draft,
    worklist_triage,
)
from sandbox.workflows.base import WORKFLOWS, register, render_request

__all__ = [
    "WORKFLOWS",
    "pacs_agent",
    "patient_summary",
    "protocoling",
    "referral_intake",
    "register",
    "render_request",
    "report_draft",
    "worklist_triage",
]
