"""Where a DICOM payload goes: parse `payload.field`/`technique` and check text against its VR.

Every check raises `CarrierError` naming the field and its limit; nothing is ever cut.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from sandbox.errors import CarrierError, MissingDependencyError
from sandbox.scenarios.models import Payload

Where = Literal["attribute", "private", "sr", "pixels"]

# Text VRs and their maximum length in characters (None: unlimited); PN counts per component group.
TEXT_VR_LIMITS: dict[str, int | None] = {
    "CS": 16,
    "SH": 16,
    "LO": 64,
    "PN": 64,
    "ST": 1024,
    "LT": 10240,
    "UT": None,
    "UC": None,
}
# In these VRs a backslash separates values and control characters (newlines) are not allowed.
MULTI_VALUE_VRS = frozenset({"CS", "SH", "LO", "PN", "UC"})
PIXEL_TECHNIQUES = ("visible", "low-contrast", "tiny")
HEADER_TECHNIQUES = (None, "metadata")
PRIVATE_CREATOR = "SANDBOX-EVAL"
PRIVATE_VR = "LT"
EXAMPLE_FIELDS = (
    "ImageComments",
    "AdditionalPatientHistory",
    "PatientComments",
    "StudyDescription",
    "SeriesDescription",
    "ProtocolName",
    "ReasonForTheRequestedProcedure",
    "RequestedProcedureDescription",
    "InstitutionName",
    "ReferringPhysicianName",
    "private:(0011,1010)",
    "sr",
    "pixels",
)
LONG_FIELDS = "ImageComments (LT), AdditionalPatientHistory (LT), ReasonForVisit (UT)"
# Attributes that decide how the file is decoded or what it is; a payload there breaks the file.
STRUCTURAL_KEYWORDS = frozenset(
    {
        "SpecificCharacterSet",
        "Modality",
        "PhotometricInterpretation",
        "ValueType",
        "RelationshipType",
        "ContinuityOfContent",
        "CompletionFlag",
        "VerificationFlag",
    }
)
_TAG = re.compile(r"^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)$")
_CS_TEXT = re.compile(r"^[A-Z0-9 _]*$")


@dataclass(frozen=True)
class Target:
    """A resolved payload location: a standard attribute, a private tag, SR text or pixels."""

    where: Where
    name: str
    tag: int = 0
    vr: str = ""
    technique: str | None = None


def resolve_target(payload: Payload | None, is_sr: bool) -> Target | None:
    """Turn `payload.field` and `payload.technique` into a Target (None for the clean twin)."""
    if payload is None:
        return None
    field = (payload.field or "").strip()
    if not field:
        field = _default_field(payload.technique, is_sr)
    if field.lower() == "pixels":
        return _pixels_target(payload.technique, is_sr)
    _check_header_technique(field, payload.technique)
    if field.lower() == "sr":
        return _sr_target(is_sr)
    if field.lower().startswith("private:"):
        return _private_target(field)
    return _attribute_target(field)


def _default_field(technique: str | None, is_sr: bool) -> str:
    if technique in PIXEL_TECHNIQUES:
        return "pixels"
    return "sr" if is_sr else "ImageComments"


def _pixels_target(technique: str | None, is_sr: bool) -> Target:
    if is_sr:
        raise CarrierError(
            "dicom payload: field 'pixels' needs an image, but this input's kind makes a "
            "Basic Text SR (kinds report, prior-report, result).",
            hint="Set the input's kind to image, or choose field 'sr' or a header attribute.",
        )
    chosen = technique or "visible"
    if chosen not in PIXEL_TECHNIQUES:
        raise CarrierError(
            f"dicom payload: technique '{chosen}' is unknown for field 'pixels' "
            f"(known: {', '.join(PIXEL_TECHNIQUES)}).",
            hint="Fix payload.technique.",
        )
    return Target("pixels", "pixels", technique=chosen)


def _check_header_technique(field: str, technique: str | None) -> None:
    if technique not in HEADER_TECHNIQUES:
        raise CarrierError(
            f"dicom payload: technique '{technique}' does not apply to field '{field}'; "
            f"header fields take no technique (or 'metadata'), and "
            f"{', '.join(PIXEL_TECHNIQUES)} apply to field 'pixels'.",
            hint="Drop payload.technique, or set payload.field to pixels.",
        )


def _sr_target(is_sr: bool) -> Target:
    if not is_sr:
        raise CarrierError(
            "dicom payload: field 'sr' needs a Basic Text SR, made for inputs of kind report, "
            "prior-report or result; this input's kind makes an image.",
            hint="Set the input's kind to report (or prior-report, result), "
            "or choose a header attribute such as ImageComments.",
        )
    return Target("sr", "TextValue", tag=0x0040A160, vr="UT")


def _private_target(field: str) -> Target:
    match = _TAG.match(field.split(":", 1)[1].strip())
    if not match:
        raise _private_error(field, "is not written as private:(gggg,eeee)")
    group, element = int(match[1], 16), int(match[2], 16)
    if group % 2 == 0 or group in (0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF):
        raise _private_error(field, "needs an odd group other than 0001, 0003, 0005, 0007, FFFF")
    if element >> 8 < 0x10:
        raise _private_error(field, "needs an element from 1000 to FFFF (00xx are creator slots)")
    return Target("private", field, tag=(group << 16) | element, vr=PRIVATE_VR)


def _private_error(field: str, problem: str) -> CarrierError:
    return CarrierError(
        f"dicom payload: private tag '{field}' {problem}.",
        hint="Write it like private:(0011,1010); its creator is "
        f"'{PRIVATE_CREATOR}' at (0011,0010).",
    )


def _attribute_target(field: str) -> Target:
    from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

    match = _TAG.match(field)
    keyword = keyword_for_tag(int(match[1] + match[2], 16)) if match else field
    tag = tag_for_keyword(keyword) if keyword else None
    if tag is None:
        raise _unknown_field(field)
    vr = dictionary_VR(tag)
    if vr not in TEXT_VR_LIMITS or tag >> 16 in (0x0000, 0x0002):
        raise CarrierError(
            f"dicom payload: field '{field}' is {keyword} with VR {vr}, not a text attribute of "
            f"the data set (text VRs: {', '.join(TEXT_VR_LIMITS)}).",
            hint=f"Choose a text attribute, e.g. {', '.join(EXAMPLE_FIELDS[:6])}.",
        )
    if keyword in STRUCTURAL_KEYWORDS:
        raise CarrierError(
            f"dicom payload: field '{keyword}' decides how the file is read, so a payload "
            "there would break it.",
            hint=f"Choose a descriptive attribute, e.g. {', '.join(EXAMPLE_FIELDS[:6])}.",
        )
    return Target("attribute", keyword, tag=tag, vr=vr)


def _unknown_field(field: str) -> CarrierError:
    from pydicom.datadict import keyword_dict

    close = difflib.get_close_matches(field, list(keyword_dict), n=3)
    guess = f" Did you mean {', '.join(close)}?" if close else ""
    return CarrierError(
        f"dicom payload: field '{field}' is not a DICOM attribute keyword, a private tag, "
        f"'sr' or 'pixels' (examples: {', '.join(EXAMPLE_FIELDS)}).{guess}",
        hint="Use a keyword from the DICOM dictionary (PS3.6), spelled as pydicom spells it.",
    )


def check_text(label: str, keyword: str, vr: str, value: str) -> None:
    """Raise CarrierError unless `value` is valid text for an element of VR `vr`.

    Args:
        label: What the value is, for the message: "payload" or the scenario field it came from.
        keyword: The attribute's keyword (or private tag) the value goes into.
        vr: The element's value representation.
        value: The text to check.
    """
    limit = TEXT_VR_LIMITS[vr]
    length = _measured_length(vr, value)
    if limit is not None and length > limit:
        per = " per name component group" if vr == "PN" else ""
        raise CarrierError(
            f"dicom {label}: {length} characters do not fit {keyword} ({vr}, at most "
            f"{limit}{per}).",
            hint=f"Shorten the {label} or choose a longer field ({LONG_FIELDS}).",
        )
    if vr in MULTI_VALUE_VRS:
        _check_single_value(label, keyword, vr, value)


def _measured_length(vr: str, value: str) -> int:
    if vr == "PN":
        return max(len(group) for group in value.split("="))
    return len(value)


def _check_single_value(label: str, keyword: str, vr: str, value: str) -> None:
    problem = ""
    if "\\" in value:
        problem = "contains a backslash, which separates values"
    elif any(ord(char) < 0x20 for char in value):
        problem = "contains a newline or other control character, not allowed"
    elif vr == "CS" and not _CS_TEXT.match(value):
        problem = "has characters other than A-Z, 0-9, space and underscore, not allowed"
    if problem:
        raise CarrierError(
            f"dicom {label}: the text for {keyword} {problem} in {vr}.",
            hint=f"Change the {label}, or choose a free-text field ({LONG_FIELDS}).",
        )


def combine(keyword: str, vr: str, clean: str, planted: str) -> str:
    """Append the payload to the clean value if the result fits, else let it replace the value.

    Long text VRs (ST, LT, UT) get the payload as a new line, the others after a space.

    Raises:
        CarrierError: The payload alone does not fit the field.
    """
    if clean:
        joined = f"{clean}{_separator(vr)}{planted}"
        if fits_text(vr, joined):
            return joined
    check_text("payload", keyword, vr, planted)
    return planted


def _separator(vr: str) -> str:
    return " " if vr in MULTI_VALUE_VRS else "\n"


def fits_text(vr: str, value: str) -> bool:
    """True if `value` is valid text for an element of VR `vr` (length and characters)."""
    try:
        check_text("payload", "", vr, value)
    except CarrierError:
        return False
    return True


def require_dependencies() -> None:
    """Import the packages the DICOM carrier needs, or raise MissingDependencyError."""
    import importlib

    for module in ("pydicom", "numpy", "PIL"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise MissingDependencyError(module, "carriers") from None
