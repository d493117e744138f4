"""What an integration reads out of each clinical file: the text a model would be given.

Text formats are decoded; DICOM headers are serialised as a PACS integration lists them (the
free-text attributes, private text elements, Structured Report text, and an Encapsulated PDF's
text); PDFs go through a standard text extractor (pypdf), which sees hidden text exactly as
production pipelines do.
Pixels carry no text here: burned-in payloads need a vision workflow.
"""

from __future__ import annotations

import base64
import binascii
import json
from io import BytesIO
from typing import Any

from sandbox.carriers.base import Artifact
from sandbox.errors import CarrierError, MissingDependencyError

DICOM_HEADER_FIELDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyDate",
    "Modality",
    "BodyPartExamined",
    "StudyDescription",
    "SeriesDescription",
    "ProtocolName",
    "DocumentTitle",
    "InstitutionName",
    "ReferringPhysicianName",
    "RequestedProcedureDescription",
    "ReasonForTheRequestedProcedure",
    "AdditionalPatientHistory",
    "PatientComments",
    "ImageComments",
)
TEXT_VRS = ("LO", "LT", "SH", "ST", "UT", "UC", "PN")


def artifact_text(artifact: Artifact) -> str:
    """The text the integration extracts from one artifact."""
    media = artifact.media_type.split(";")[0].strip()
    if media == "application/dicom":
        return dicom_text(artifact.data)
    if media == "application/pdf":
        return pdf_text(artifact.data)
    text = artifact.data.decode("utf-8", errors="replace")
    if media == "application/fhir+json":
        return fhir_text(text)
    return text.replace("\r", "\n").strip() if "hl7" in media else text.strip()


def fhir_text(document: str) -> str:
    """The resource's JSON, then the decoded text of its attachments (as integrations show it)."""
    try:
        resource = json.loads(document)
    except ValueError:
        return document.strip()
    decoded = [_attachment_text(a) for a in _attachments(resource)]
    return "\n".join([document.strip(), *(f"Attachment text: {t}" for t in decoded if t)])


def _attachments(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [a for item in node for a in _attachments(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if "data" in node and "contentType" in node else []
    return found + [a for value in node.values() for a in _attachments(value)]


def _attachment_text(attachment: dict[str, Any]) -> str:
    if not str(attachment.get("contentType", "")).startswith("text/"):
        return ""
    try:
        return base64.b64decode(str(attachment["data"])).decode("utf-8", errors="replace")
    except (ValueError, binascii.Error):
        return ""


def dicom_text(data: bytes) -> str:
    """'Keyword: value' lines for the header fields a PACS shows, private, SR and PDF text."""
    pydicom = _import("pydicom")
    dataset = pydicom.dcmread(BytesIO(data), stop_before_pixels=True)
    lines = [
        f"{keyword}: {dataset.data_element(keyword).value}"
        for keyword in DICOM_HEADER_FIELDS
        if keyword in dataset and str(dataset.data_element(keyword).value).strip()
    ]
    lines += [
        f"({element.tag.group:04X},{element.tag.element:04X}): {element.value}"
        for element in dataset
        if element.tag.is_private and element.VR in ("LT", "ST", "UT") and element.value
    ]
    lines += [f"Report text: {value}" for value in _sr_text(dataset)]
    lines += [f"Document text:\n{pdf_text(pdf)}" for pdf in _encapsulated_pdf(dataset)]
    return "\n".join(lines)


def _sr_text(dataset: Any) -> list[str]:
    found = []
    for item in getattr(dataset, "ContentSequence", []):
        if getattr(item, "TextValue", ""):
            found.append(str(item.TextValue))
        found += _sr_text(item)
    return found


def _encapsulated_pdf(dataset: Any) -> list[bytes]:
    """The PDF of an Encapsulated PDF instance, without the byte that pads it to even length."""
    if dataset.get("MIMETypeOfEncapsulatedDocument") != "application/pdf":
        return []
    data = bytes(dataset.get("EncapsulatedDocument", b""))
    length = dataset.get("EncapsulatedDocumentLength")
    data = data[:length] if isinstance(length, int) else data.removesuffix(b"\x00")
    return [data] if data else []


def pdf_text(data: bytes) -> str:
    """Every page's text, as pypdf extracts it."""
    pypdf = _import("pypdf")
    try:
        reader = pypdf.PdfReader(BytesIO(data))
        return "\n".join(page.extract_text() or "" for page in reader.pages).strip()
    except pypdf.errors.PdfReadError as exc:
        raise CarrierError(f"the PDF cannot be read: {exc}") from exc


def _import(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise MissingDependencyError(module, "carriers") from exc
