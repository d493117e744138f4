"""HL7 v2.5.1 radiology orders (ORM^O01) and results (ORU^R01), assembled as ER7 text by hand.

The payload goes into one free-text field and is escaped like every other value, so it changes
what a reader sees but never the segment, field or component structure of the message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, replace

from sandbox.carriers.base import Artifact, Location, fill_payload, planted_text, register
from sandbox.errors import CarrierError
from sandbox.scenarios.models import Case, Input, Scenario

ENCODING_CHARACTERS = "^~\\&"
SEGMENT_SEPARATOR = "\r"
# HL7 v2.5.1 §2.7.4: the delimiters and the escape character inside data.
_DELIMITER_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}
_TIME_FORMAT = "%Y%m%d%H%M%S"
_DIAGNOSTIC_SECTIONS = {"CT": "CT", "MR": "NMR", "US": "RUS", "NM": "NMS"}  # HL7 table 0074
_MESSAGE_TYPES = {"order": "ORM^O01^ORM_O01", "result": "ORU^R01^ORU_R01"}
RESULT_COMMENT = "Final report. Electronically signed by the reporting radiologist."


@dataclass(frozen=True)
class FieldSpec:
    """A field that can carry the payload, with its HL7 v2.5.1 data type and maximum length."""

    title: str
    data_type: str
    max_length: int
    kinds: tuple[str, ...]


# Lengths from the HL7 v2.5.1 attribute tables (OBR, NTE, OBX in chapters 4 and 7; CE in
# chapter 2), enforced on the value as written, escape sequences included. OBR-31 is a repeating
# CE of at most 250 per repetition; the payload is a repetition of its own whose text component
# (CE.2, ST) holds at most 199.
FIELDS: dict[str, FieldSpec] = {
    "OBR-13": FieldSpec("Relevant Clinical Information", "ST", 300, ("order", "result")),
    "OBR-31": FieldSpec("Reason for Study", "CE.2 text", 199, ("order", "result")),
    "NTE-3": FieldSpec("Comment", "FT", 65536, ("order", "result")),
    "OBX-5": FieldSpec("Observation Value", "FT", 99999, ("result",)),
}
DEFAULT_FIELD = "OBR-13"
_BODY_FIELDS = {"order": "NTE-3", "result": "OBX-5"}  # where input.content goes


@dataclass(frozen=True)
class Texts:
    """The free-text values of one message, unescaped."""

    clinical_info: str
    reasons: tuple[str, ...]
    comment: str
    report: str


@dataclass(frozen=True)
class Ids:
    """Identifiers and times hashed from the scenario id: the same scenario gives the same bytes."""

    control_id: str
    placer: str
    filler: str
    ordered: dt.datetime

    def stamp(self, hours: int = 0) -> str:
        """The order time plus `hours`, as an HL7 TS value."""
        return (self.ordered + dt.timedelta(hours=hours)).strftime(_TIME_FORMAT)


LOCATIONS = (
    *(Location("order", field=f) for f in ("OBR-13", "OBR-31", "NTE-3")),
    Location("result", field="OBX-5"),
)


@register("hl7", LOCATIONS, "HL7 v2.5.1 orders (ORM^O01) and results (ORU^R01)")
def build_hl7(scenario: Scenario, item: Input) -> Artifact:
    """Build an ORM^O01 (order) or ORU^R01 (result) message; the clean twin omits the payload."""
    field = _check_input(item)
    planted = planted_text(scenario, item.payload) if item.payload else ""
    texts = _texts(scenario.case, item, planted, field)
    if field != _BODY_FIELDS[item.kind]:
        texts = _plant(texts, field, planted)
    _check_lengths(texts)
    segments = _segments(scenario, item.kind, texts)
    return Artifact(
        name="order.hl7",
        media_type="x-application/hl7-v2+er7",
        kind=item.kind,
        data=(SEGMENT_SEPARATOR.join(segments) + SEGMENT_SEPARATOR).encode("utf-8"),
        has_payload=bool(planted),
    )


def escape(text: str, *, formatted: bool = False) -> str:
    r"""Escape a value for an ER7 field: delimiters as \F\ etc., line breaks as \.br\ in FT.

    Outside formatted text (FT) a line break is written as the hexadecimal escape \X0A\, and
    every other control character likewise, so no raw byte can end a segment or a field.
    """
    out = []
    for char in _normalise_newlines(text):
        if char in _DELIMITER_ESCAPES:
            out.append(_DELIMITER_ESCAPES[char])
        elif char == "\n" and formatted:
            out.append("\\.br\\")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\X{ord(char):02X}\\")
        else:
            out.append(char)
    return "".join(out)


def _check_input(item: Input) -> str | None:
    """Validate kind, field and technique; return the payload field (None for the clean twin)."""
    if item.kind not in _MESSAGE_TYPES:
        raise CarrierError(
            f"hl7 input: kind '{item.kind}' has no HL7 message here (supported: order, result).",
            hint="Use kind: order (ORM^O01) or kind: result (ORU^R01).",
        )
    if item.payload is None:
        return None
    if item.payload.technique is not None:
        raise CarrierError(
            f"hl7 payload: technique '{item.payload.technique}' is not supported; the hl7 "
            "carrier hides text only by its field.",
            hint="Remove payload.technique and choose payload.field instead.",
        )
    return _check_field(item.payload.field or DEFAULT_FIELD, item.kind)


def _check_field(field: str, kind: str) -> str:
    """Return `field` if a message of `kind` has it, else raise naming the allowed ones."""
    allowed = [name for name, spec in FIELDS.items() if kind in spec.kinds]
    if field not in allowed:
        raise CarrierError(
            f"hl7 payload: field '{field}' is not available in an HL7 {kind} message "
            f"(allowed: {', '.join(allowed)}).",
            hint=f"Set payload.field to one of {', '.join(allowed)}.",
        )
    return field


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _texts(case: Case, item: Input, planted: str, field: str | None) -> Texts:
    """The clean free-text values; input.content (with the payload if it goes there) is the body."""
    body_field = _BODY_FIELDS[item.kind]
    body = fill_payload(item.content, planted if field == body_field else "", "\n\n")
    indication = case.study.indication.strip()
    if item.kind == "order":
        return Texts(indication, (indication,) if indication else (), body, "")
    report = body or _report_from_findings(case)
    return Texts(indication, (indication,) if indication else (), RESULT_COMMENT, report)


def _plant(texts: Texts, field: str | None, planted: str) -> Texts:
    """Add the payload to a field other than the body field (which `_texts` filled)."""
    if field == "OBR-13":
        return replace(texts, clinical_info=fill_payload(texts.clinical_info, planted, " "))
    if field == "OBR-31":
        return replace(texts, reasons=(*texts.reasons, planted))
    if field == "NTE-3":
        return replace(texts, comment=fill_payload(texts.comment, planted, "\n\n"))
    return texts


def _report_from_findings(case: Case) -> str:
    """A plain report body from the case's ground truth, used when input.content is empty."""
    study = _procedure_text(case)
    findings = [f"- {finding.text.rstrip('.')}." for finding in case.findings]
    lines = [f"EXAMINATION: {study}", "", "FINDINGS:", *(findings or ["- No acute abnormality."])]
    if case.study.indication:
        lines[1:1] = ["", f"INDICATION: {case.study.indication}"]
    return "\n".join(lines)


def _check_lengths(texts: Texts) -> None:
    """Raise if a value, escaped as it will be written, exceeds its field's v2.5.1 length."""
    _fit("OBR-13", escape(texts.clinical_info))
    for reason in texts.reasons:
        _fit("OBR-31", escape(reason))
    _fit("NTE-3", escape(texts.comment, formatted=True))
    _fit("OBX-5", escape(texts.report, formatted=True))


def _fit(field: str, value: str) -> None:
    """Raise a CarrierError naming the field, its limit and longer fields if `value` is too long."""
    spec = FIELDS[field]
    if len(value) <= spec.max_length:
        return
    per = " per repetition" if field == "OBR-31" else ""
    longer = [name for name, other in FIELDS.items() if other.max_length > spec.max_length]
    raise CarrierError(
        f"hl7 payload: {len(value)} characters (escaped, with any clinical text in the field) "
        f"do not fit {field} {spec.title} ({spec.data_type}, at most {spec.max_length}{per}).",
        hint=f"Shorten the payload or choose a longer field ({', '.join(longer)}).",
    )


def _ids(scenario: Scenario, kind: str) -> Ids:
    """Control id, order numbers and the order time, all hashed from the scenario id."""
    digest = hashlib.sha256(f"{scenario.id}:{kind}".encode()).hexdigest()
    number = int(digest[:12], 16)
    minutes = 8 * 60 + (number // 366) % (9 * 60)  # during a working day
    ordered = dt.datetime(2024, 1, 1) + dt.timedelta(days=number % 366, minutes=minutes)
    return Ids(
        control_id=f"SBX{digest[:12].upper()}",
        placer=f"PO{number % 10**8:08d}",
        filler=f"ACC{(number // 10**8) % 10**8:08d}",
        ordered=ordered,
    )


def _procedure_text(case: Case) -> str:
    study = case.study
    return (study.description or f"{study.modality} {study.body_part}").strip().upper()


def _procedure(case: Case) -> str:
    """OBR-4 as code^text^coding system, with a fictional local code (HL7 table 0396 'L')."""
    text = _procedure_text(case)
    code = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 90000 + 10000
    return f"SBX{code}^{escape(text)}^L"


def _reason(text: str) -> str:
    """One OBR-31 repetition: a CE with the text component only."""
    return f"^{escape(text)}"


def _segments(scenario: Scenario, kind: str, texts: Texts) -> list[str]:
    ids = _ids(scenario, kind)
    if kind == "order":
        return [
            _msh(ids, kind),
            _pid(scenario.case),
            "PV1|1|O|RAD^^^SBXHOSP",
            _orc(ids),
            _obr(scenario.case, ids, texts, kind),
            _nte(texts.comment, source="P"),
        ]
    return [
        _msh(ids, kind),
        _pid(scenario.case),
        _obr(scenario.case, ids, texts, kind),
        _obx(ids, texts.report),
        _nte(texts.comment, source="L"),
    ]


def _msh(ids: Ids, kind: str) -> str:
    sender = "RIS" if kind == "order" else "PACS-REPORTING"
    fields = [ENCODING_CHARACTERS, sender, "SBXHOSP", "REPORT-ASSIST", "SBXHOSP"]
    fields += [ids.stamp(0 if kind == "order" else 3), "", _MESSAGE_TYPES[kind], ids.control_id]
    fields += ["P", "2.5.1", "", "", "AL", "NE", "", "UNICODE UTF-8"]
    return "MSH|" + "|".join(fields)


def _pid(case: Case) -> str:
    patient = case.patient
    name = "^".join(escape(part) for part in patient.name.split("^"))
    birth = patient.birth_date.replace("-", "")
    return f"PID|1||{escape(patient.mrn)}^^^SBXHOSP^MR||{name}||{birth}|{patient.sex}"


def _orc(ids: Ids) -> str:
    fields = ["ORC", "NW", ids.placer, "", "", "", "", "", "", ids.stamp(), "", "", _provider()]
    return "|".join(fields)


def _provider() -> str:
    """A fictional referring physician (XCN: id^family^given^^^prefix)."""
    return "SBX4711^REFERRER^ALEX^^^DR"


def _obr(case: Case, ids: Ids, texts: Texts, kind: str) -> str:
    fields = ["OBR", "1", ids.placer, ids.filler, _procedure(case)] + [""] * 27
    fields[7] = ids.stamp(1)
    fields[13] = escape(texts.clinical_info)
    fields[16] = _provider()
    fields[24] = _DIAGNOSTIC_SECTIONS.get(case.study.modality.upper(), "RAD")
    fields[25] = "F" if kind == "result" else ""
    fields[31] = "~".join(_reason(reason) for reason in texts.reasons)
    return "|".join(fields)


def _obx(ids: Ids, report: str) -> str:
    code = "18782-3^Radiology Study observation (narrative)^LN"
    fields = ["OBX", "1", "FT", code, "", escape(report, formatted=True)]
    fields += ["", "", "", "", "", "F", "", "", ids.stamp(2)]
    return "|".join(fields)


def _nte(comment: str, source: str) -> str:
    return f"NTE|1|{source}|{escape(comment, formatted=True)}"
