"""DICOM Part 10 files with a payload in a header attribute, a private tag, SR text or pixels.

Inputs of kind report, prior-report or result become a Basic Text SR; a referral becomes an
Encapsulated PDF of the `pdf` carrier's letter, its payload hidden by a PDF technique (see
dicom_document); every other kind becomes a 512x512 grey-scale image of the case's modality
(CT, MR, CR, DX, MG, US; else Secondary Capture). `payload.field` chooses where the payload goes:

- a standard text attribute by keyword or tag, e.g. ImageComments, "(0010,21B0)" (the default
  for images is ImageComments);
- "private:(gggg,eeee)": an LT element in an odd group, creator "SANDBOX-EVAL" at (gggg,00ee);
- "sr": the Finding TEXT item of the SR (the default for reports);
- "pixels": burned into the image with technique visible, low-contrast or tiny.

Placement rule: when the attribute already has clinical text, the payload is appended (after a
space, or a new line in ST/LT/UT) if the result fits the VR; otherwise it replaces the clinical
text; a payload that alone does not fit is a CarrierError. A `{payload}` mark in the input's
content (the ImageComments or SR findings text) puts it there instead of appending it.
The clean twin is the same file, same UIDs, without the payload. An image's BurnedInAnnotation
says NO in both: an attacker who burns in text does not set the flag.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from sandbox.carriers.base import Artifact, Location, planted_text, register
from sandbox.carriers.dicom_document import DOCUMENT_KINDS, build_document
from sandbox.carriers.dicom_fields import (
    PIXEL_TECHNIQUES,
    PRIVATE_CREATOR,
    Target,
    check_text,
    combine,
    require_dependencies,
    resolve_target,
)
from sandbox.carriers.dicom_header import SR_KINDS, build_sr, find_finding_item
from sandbox.carriers.dicom_image import build_image, burn_payload
from sandbox.scenarios.models import PAYLOAD_MARK, Input, Scenario

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

MEDIA_TYPE = "application/dicom"


HEADER_SAMPLE = (
    "StudyDescription",
    "SeriesDescription",
    "ImageComments",
    "AdditionalPatientHistory",
    "PatientComments",
    "ReasonForTheRequestedProcedure",
    "RequestedProcedureDescription",
    "InstitutionName",
    "ProtocolName",
    "private:(0011,1010)",
)
LOCATIONS = (
    *(Location("image", field=f) for f in HEADER_SAMPLE),
    Location("report", field="sr"),
    *(Location("referral", technique=t) for t in ("visible", "white-text", "invisible")),
    *(Location("image", field="pixels", technique=t, pixels=True) for t in PIXEL_TECHNIQUES),
)


@register(
    "dicom", LOCATIONS, "DICOM Part 10: header text attributes, private tags, SR, PDF, pixels"
)
def build_dicom(scenario: Scenario, item: Input) -> Artifact:
    """Build the DICOM file of `item`: an image, a Basic Text SR or an Encapsulated PDF."""
    require_dependencies()
    if item.kind in DOCUMENT_KINDS:
        return _artifact(item, *build_document(scenario, item))
    is_sr = item.kind in SR_KINDS
    target = resolve_target(item.payload, is_sr)
    planted = planted_text(scenario, item.payload) if item.payload else ""
    at_mark = target is not None and _is_body(target, is_sr) and PAYLOAD_MARK in item.content
    body = item.content.replace(PAYLOAD_MARK, planted if at_mark else "").strip()
    ds = build_sr(scenario, item, body) if is_sr else build_image(scenario, item, body)
    if target is not None and not at_mark:
        _plant(ds, target, planted)
    return _artifact(item, ds, bool(planted))


def _artifact(item: Input, ds: Dataset, has_payload: bool) -> Artifact:
    return Artifact(
        name=f"{item.kind}.dcm",
        media_type=MEDIA_TYPE,
        kind=item.kind,
        data=write_part10(ds),
        has_payload=has_payload,
    )


def _is_body(target: Target, is_sr: bool) -> bool:
    """True if the target is where the input's content goes (SR findings or ImageComments)."""
    return target.where == "sr" if is_sr else target.name == "ImageComments"


def _plant(ds: Dataset, target: Target, planted: str) -> None:
    if target.where == "pixels":
        burn_payload(ds, planted, target.technique or "visible")
    elif target.where == "sr":
        item = find_finding_item(ds)
        item.TextValue = combine("TextValue", "UT", str(item.TextValue), planted)
    elif target.where == "private":
        check_text("payload", target.name, target.vr, planted)
        group, element = target.tag >> 16, target.tag & 0xFFFF
        ds.add_new((group << 16) | (element >> 8), "LO", PRIVATE_CREATOR)
        ds.add_new(target.tag, target.vr, planted)
    else:
        clean = _clean_value(ds, target.tag)
        ds.add_new(target.tag, target.vr, combine(target.name, target.vr, clean, planted))


def _clean_value(ds: Dataset, tag: int) -> str:
    """The element's current text ('' if absent); several values are joined by backslashes."""
    from pydicom.multival import MultiValue

    if tag not in ds or ds[tag].value is None:
        return ""
    value = ds[tag].value
    if isinstance(value, MultiValue | list):
        return "\\".join(str(part) for part in value)
    return str(value)


def write_part10(ds: Dataset) -> bytes:
    """Serialise with the 128-byte preamble, 'DICM' and the file meta group."""
    import pydicom

    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
