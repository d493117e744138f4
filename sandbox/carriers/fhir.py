"""FHIR R4 resources (ServiceRequest, ImagingStudy, DiagnosticReport, DocumentReference) as JSON.

The payload goes into one text element; in an attachment it is base64-encoded inside `data`, out
of sight in the raw JSON but plain to any integration that decodes the document.
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.carriers.base import Artifact, Location, fill_payload, planted_text, register
from sandbox.carriers.fhir_resources import BUILDERS, TextBuilder
from sandbox.errors import CarrierError
from sandbox.scenarios.models import Input, Scenario

RESOURCES = {
    "order": "ServiceRequest",
    "image": "ImagingStudy",
    "report": "DiagnosticReport",
    "prior-report": "DiagnosticReport",
    "result": "DiagnosticReport",
    "referral": "DocumentReference",
    "note": "DocumentReference",
}
# Elements that can carry the payload, per resource; the first is the default.
FIELDS: dict[str, tuple[str, ...]] = {
    "ServiceRequest": ("note", "reasonCode.text", "patientInstruction", "code.text"),
    "ImagingStudy": ("description", "note", "series.description"),
    "DiagnosticReport": ("conclusion", "presentedForm", "code.text"),
    "DocumentReference": ("description", "content.attachment"),
}
# Where input.content goes; the elements after it hold narrative, so a payload is a new paragraph.
BODY_FIELDS = {
    "ServiceRequest": "note",
    "ImagingStudy": "note",
    "DiagnosticReport": "presentedForm",
    "DocumentReference": "content.attachment",
}
_NARRATIVE = {"note", "conclusion", "presentedForm", "content.attachment"}
_ATTACHMENTS = {"presentedForm", "content.attachment"}  # base64Binary, no length limit
# FHIR R4 §2.24.0.1 (string): "Strings SHALL NOT exceed 1MB (1024*1024 characters) in size".
MAX_STRING = 1024 * 1024


LOCATIONS = (
    *(
        Location("order", field=f)
        for f in ("note", "reasonCode.text", "patientInstruction", "code.text")
    ),
    *(Location("image", field=f) for f in ("description", "note", "series.description")),
    *(Location("report", field=f) for f in ("conclusion", "code.text", "presentedForm")),
    *(Location("referral", field=f) for f in ("description", "content.attachment")),
)


@register(
    "fhir", LOCATIONS, "FHIR R4 ServiceRequest, ImagingStudy, DiagnosticReport, DocumentReference"
)
def build_fhir(scenario: Scenario, item: Input) -> Artifact:
    """Build the FHIR R4 resource for the input's kind; the clean twin omits the payload."""
    resource_type = _resource_type(item)
    field = _check_payload(item, resource_type)
    planted = planted_text(scenario, item.payload) if item.payload else ""
    body_field = BODY_FIELDS[resource_type]
    body = fill_payload(item.content, planted if field == body_field else "", "\n\n")
    builder: TextBuilder = BUILDERS[resource_type]
    texts = builder.texts(scenario.case, item, body)
    if field is not None and field != body_field:
        texts[field] = fill_payload(texts.get(field, ""), planted, _separator(field))
    _check_lengths(resource_type, texts)
    resource = builder.resource(scenario, item, texts)
    return Artifact(
        name=f"{item.kind}.json",
        media_type="application/fhir+json",
        kind=item.kind,
        data=dump(resource),
        has_payload=bool(planted),
    )


def dump(resource: dict[str, Any]) -> bytes:
    """Serialise a resource the same way every time: sorted keys, 2-space indent, UTF-8."""
    return (json.dumps(resource, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _separator(field: str) -> str:
    return "\n\n" if field in _NARRATIVE else " "


def _resource_type(item: Input) -> str:
    if item.kind not in RESOURCES:
        known = ", ".join(f"{kind} ({name})" for kind, name in RESOURCES.items())
        raise CarrierError(
            f"fhir input: kind '{item.kind}' has no FHIR resource here (supported: {known}).",
            hint="Set the input's kind to one of those, or use the text carrier for it.",
        )
    return RESOURCES[item.kind]


def _check_payload(item: Input, resource_type: str) -> str | None:
    """Validate technique and field; return the payload's element (None for the clean twin)."""
    if item.payload is None:
        return None
    if item.payload.technique is not None:
        raise CarrierError(
            f"fhir payload: technique '{item.payload.technique}' is not supported; the fhir "
            "carrier hides text only by its element (content.attachment is base64).",
            hint="Remove payload.technique and choose payload.field instead.",
        )
    allowed = FIELDS[resource_type]
    field = item.payload.field or allowed[0]
    if field not in allowed:
        raise CarrierError(
            f"fhir payload: field '{field}' is not available in a {resource_type} "
            f"(kind '{item.kind}'; allowed: {', '.join(allowed)}).",
            hint=f"Set payload.field to one of {', '.join(allowed)}.",
        )
    return field


def _check_lengths(resource_type: str, texts: dict[str, str]) -> None:
    for field, text in texts.items():
        if field not in _ATTACHMENTS and len(text) > MAX_STRING:
            raise CarrierError(
                f"fhir payload: {len(text)} characters do not fit {resource_type}.{field} "
                f"(FHIR string, at most {MAX_STRING:,} characters).",
                hint="Shorten the payload or put it in an attachment "
                "(DiagnosticReport.presentedForm, DocumentReference.content.attachment).",
            )
