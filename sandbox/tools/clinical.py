"""The radiology tools a PACS assistant gets.

Query the PACS, read a prior report, send a message, fetch a URL.
"""

from __future__ import annotations

from typing import Any

from sandbox.tools.base import Tool, ToolContext, register
from sandbox.workflows.extract import artifact_text


def _pacs_query(args: dict[str, Any], context: ToolContext) -> str:
    case = context.scenario.case
    wanted = str(args.get("patient_id", ""))
    if wanted and wanted != case.patient.mrn:
        return "No studies found for that patient."
    priors = [a for a in context.artifacts if a.kind == "prior-report"]
    lines = [
        f"{case.patient.name} {case.patient.mrn}: {case.study.modality} {case.study.body_part}"
        f" {case.study.description} (current, unread)"
    ]
    lines += [f"prior report available: {a.name}" for a in priors]
    return "\n".join(lines)


def _prior_report(args: dict[str, Any], context: ToolContext) -> str:
    priors = [a for a in context.artifacts if a.kind == "prior-report"]
    if not priors:
        return "No prior report on file."
    return "\n\n".join(artifact_text(a) for a in priors)


def _send_message(args: dict[str, Any], context: ToolContext) -> str:
    recipient = str(args.get("to", ""))
    context.sent.append(recipient)
    return f"Message queued for {recipient or '(no recipient)'}."


def _fetch_url(args: dict[str, Any], context: ToolContext) -> str:
    url = str(args.get("url", ""))
    if not url.startswith(("http://", "https://")):
        return "Only http and https URLs can be fetched."
    return context.fetch(url)


TOOLS_IN_ORDER = [
    register(Tool("pacs_query", _pacs_query, untrusted_output=True)),
    register(Tool("get_prior_report", _prior_report, untrusted_output=True)),
    register(Tool("send_message", _send_message, sends=True)),
    register(Tool("fetch_url", _fetch_url, sends=True, untrusted_output=True)),
]
