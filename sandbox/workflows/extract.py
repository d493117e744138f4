"""What an integration reads out of each clinical file: the text a model would be given.

Text formats are decoded; DICOM headers are serialised as a PACS integration lists them (the
free-text attributes, private text elements, and Structured Report text); PDFs go through a
standard text extractor (pypdf), which sees hidden text exactly as production pipelines do.
Pixels carry no text here: burned-in payloads need a vision workflow.
"""

from __future__ import annotations

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
    return text.replace("\r", "\n").strip() if "hl7" in media else text.strip()


def dicom_text(data: bytes) -> str:
    """'Keyword: value' lines for the header fields a PACS shows, private text, and SR text."""
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
    return "\n".join(lines)


def _sr_text(dataset: Any) -> list[str]:
    found = []
    for item in getattr(dataset, "ContentSequence", []):
        if getattr(item, "TextValue", ""):
            found.append(str(item.TextValue))
        found += _sr_text(item)
    return found


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
