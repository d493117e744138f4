"""The prompt layout workflows share: a header from the case, then one section per document.

Integrations paste records into a prompt the same way: a header the host system already knows
(patient, study) and each file's extracted text under a title in capitals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sandbox.carriers.base import Artifact
from sandbox.chat import ChatRequest, Message
from sandbox.scenarios.models import Patient, Study
from sandbox.workflows.extract import artifact_text

# Section titles by input kind; a workflow overrides the ones its integration names differently.
SECTION_TITLES: dict[str, str] = {
    "dictation": "Radiologist dictation",
    "prior-report": "Prior report",
    "report": "Report",
    "note": "Clinical note",
    "image": "DICOM header",
    "referral": "Referral",
    "order": "Order",
    "result": "Result",
}


def patient_line(patient: Patient) -> str:
    """The patient as the host system shows it: name, MRN, birth date and sex on one line."""
    return (
        f"Patient: {patient.name}  MRN: {patient.mrn}  Born: {patient.birth_date}  "
        f"Sex: {patient.sex}"
    )


def examination(study: Study) -> str:
    """The examination's name: the study description, else modality and body part."""
    return study.description or f"{study.modality} {study.body_part}"


def study_lines(study: Study, *, indication: bool = True) -> list[str]:
    """Modality, body part, description and (unless left out) the indication, one per line."""
    lines = [f"Modality: {study.modality}", f"Body part: {study.body_part}"]
    if study.description:
        lines.append(f"Study description: {study.description}")
    if indication and study.indication:
        lines.append(f"Indication: {study.indication}")
    return lines


def header(title: str, lines: Sequence[str]) -> list[str]:
    """A block that opens the message: its title in capitals, then its lines."""
    return [title.upper(), *lines]


def document_sections(
    artifacts: Sequence[Artifact], titles: Mapping[str, str] | None = None
) -> list[str]:
    """Each artifact's extracted text under its title, after a blank line, in input order.

    Args:
        artifacts: The built inputs, in the order the scenario lists them.
        titles: Titles by input kind that replace the defaults in `SECTION_TITLES`.
    """
    names = {**SECTION_TITLES, **(titles or {})}
    parts: list[str] = []
    for artifact in artifacts:
        title = names.get(artifact.kind, artifact.kind)
        parts += ["", title.upper(), artifact_text(artifact)]
    return parts


def chat_request(system_prompt: str, parts: Sequence[str], closing: str) -> ChatRequest:
    """A system message and one user message: the parts, a blank line, then the closing ask."""
    user = "\n".join([*parts, "", closing])
    return ChatRequest(
        messages=[
            Message(role="system", content=system_prompt),
            Message(role="user", content=user),
        ]
    )
