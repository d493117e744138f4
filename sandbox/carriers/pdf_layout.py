"""The visible clinical document inside a PDF carrier: sender, patient block and body text.

Names, dates and numbers are hashed from the scenario id, so a scenario always lays out the same.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from xml.sax.saxutils import escape

from sandbox.scenarios.models import Input, Scenario

if TYPE_CHECKING:
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.platypus import Flowable

T = TypeVar("T")

PAGE_WIDTH, PAGE_HEIGHT = 595.2756, 841.8898  # A4 in points
MARGIN = 56.7  # 2 cm
BOTTOM_MARGIN = 72.0  # leaves room for the footer
FONT, BOLD = "Helvetica", "Helvetica-Bold"
BODY_SIZE, BODY_LEADING = 10.0, 13.0
MONTHS = (
    "January February March April May June July August September October November December"
).split()
REPORT_KINDS = {"report", "prior-report"}
TITLES = {
    "report": "RADIOLOGY REPORT",
    "prior-report": "RADIOLOGY REPORT",
    "dictation": "DICTATION TRANSCRIPT",
    "note": "CLINICAL NOTE",
    "order": "IMAGING REQUEST",
    "result": "RESULT REPORT",
    "image": "IMAGE REPORT",
}
REPORT_HEADING = re.compile(
    r"^(clinical history|history|comparison|technique|findings|impression|conclusion"
    r"|recommendations?)\s*:\s*(.*)$",
    re.IGNORECASE,
)
REFERRAL_EXTRA = re.compile(r"^(allerg(?:y|ies)|(?:current )?medications?)\s*:\s*(.*)$", re.I)


@dataclass(frozen=True)
class Sender:
    """A fictional organisation and the person who signs its documents."""

    organisation: str
    address: str
    phone: str
    person: str
    role: str


CLINICS = (
    Sender(
        "Harbourside Family Practice",
        "14 Quay Street, Porthaven PV1 4QS",
        "01632 960 214",
        "Dr Amelia Hart",
        "General Practitioner",
    ),
    Sender(
        "Elm Row Medical Centre",
        "3 Elm Row, Kingsbridge Vale KV7 2LD",
        "01632 960 587",
        "Dr Samuel Okafor",
        "General Practitioner",
    ),
    Sender(
        "Millbrook Health Clinic",
        "Unit 2, Millbrook Parade, Ashcombe AC3 8RN",
        "01632 960 731",
        "Dr Priya Raman",
        "General Practitioner",
    ),
)
CENTRES = (
    Sender(
        "Northgate Imaging Centre",
        "40 Northgate, Porthaven PV3 1XB",
        "01632 961 402",
        "Dr Helena Voss",
        "Consultant Radiologist",
    ),
    Sender(
        "Riverside Diagnostic Radiology",
        "7 Wharf Lane, Kingsbridge Vale KV2 6TT",
        "01632 961 955",
        "Dr Marcus Lindqvist",
        "Consultant Radiologist",
    ),
)
RADIOLOGY = "Department of Radiology, St Brendan's General Hospital, 1 Infirmary Road, Porthaven"


@dataclass(frozen=True)
class DocumentInfo:
    """What the PDF's Info dictionary and XMP packet say about the document."""

    title: str
    author: str
    subject: str
    keywords: str
    creator: str
    created: dt.datetime


def hash_number(scenario_id: str, salt: str) -> int:
    """A stable number derived from the scenario id (different per salt)."""
    return int(hashlib.sha256(f"{salt}:{scenario_id}".encode()).hexdigest()[:12], 16)


def pick(options: Sequence[T], scenario_id: str, salt: str) -> T:
    """Choose one of `options` by the scenario id, the same one every time."""
    return options[hash_number(scenario_id, salt) % len(options)]


def sender_of(scenario: Scenario, item: Input) -> Sender:
    """The clinic that writes a referral, or the imaging centre that writes anything else."""
    senders = CLINICS if item.kind == "referral" else CENTRES
    return pick(senders, scenario.id, "sender")


def document_time(scenario_id: str) -> dt.datetime:
    """When the document was written: office hours on a day in 2024-2025, from the id."""
    number = hash_number(scenario_id, "date")
    day = dt.date(2024, 1, 1) + dt.timedelta(days=number % 730)
    return dt.datetime(day.year, day.month, day.day, 8 + number % 9, number % 60)


def format_date(day: dt.date) -> str:
    """'12 March 2024' (locale-independent)."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def format_dob(iso: str) -> str:
    """'02-Mar-1961', the unambiguous form clinical systems print."""
    day = dt.date.fromisoformat(iso)
    return f"{day.day:02d}-{MONTHS[day.month - 1][:3]}-{day.year}"


def display_name(dicom_name: str) -> str:
    """'DOE^JANE' -> 'DOE, Jane' (family name first, as on clinical letters)."""
    parts = dicom_name.split("^")
    given = " ".join(part.title() for part in parts[1:3] if part)
    return f"{parts[0].upper()}, {given}" if given else parts[0].upper()


def examination(scenario: Scenario) -> str:
    """'CT CHEST' plus the study description when there is one."""
    study = scenario.case.study
    exam = f"{study.modality} {study.body_part}"
    return f"{exam} ({study.description})" if study.description else exam


def indication(scenario: Scenario) -> str:
    """The reason for the study as the referrer wrote it."""
    study = scenario.case.study
    return study.indication or study.description or f"Imaging of the {study.body_part.lower()}."


def document_info(scenario: Scenario, item: Input) -> DocumentInfo:
    """The benign metadata a clinical system would write for this document."""
    sender = sender_of(scenario, item)
    exam = examination(scenario)
    kind = "Radiology referral" if item.kind == "referral" else TITLES[item.kind].capitalize()
    return DocumentInfo(
        title=f"{kind}: {exam}",
        author=f"{sender.person}, {sender.organisation}",
        subject=f"{kind} for {exam}. {indication(scenario)}",
        keywords=f"{item.kind}, {scenario.case.study.modality}, {scenario.case.study.body_part}",
        creator=f"{sender.organisation} document system",
        created=document_time(scenario.id),
    )


def body_lines(text: str) -> list[str]:
    """The non-empty lines of a body text, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def referral_sections(text: str) -> list[tuple[str, list[str]]]:
    """Clinical details, with 'Allergies:' and 'Medications:' lines moved to their own sections."""
    sections: dict[str, list[str]] = {"Clinical details": [], "Allergies": [], "Medications": []}
    for line in body_lines(text):
        match = REFERRAL_EXTRA.match(line)
        if match is None:
            sections["Clinical details"].append(line)
            continue
        key = "Allergies" if match.group(1).lower().startswith("allerg") else "Medications"
        sections[key] += [match.group(2)] if match.group(2) else []
    return [(heading, lines) for heading, lines in sections.items() if lines]


def report_sections(text: str, first: str) -> list[tuple[str, list[str]]]:
    """Sections by their 'FINDINGS:'-style headings; a text without any is all under `first`.

    Lines before the first heading of a text that has headings stay untitled (heading '').
    """
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in body_lines(text):
        match = REPORT_HEADING.match(line)
        if match is None:
            sections[-1][1].append(line)
            continue
        sections.append((match.group(1).upper(), [match.group(2)] if match.group(2) else []))
    if len(sections) == 1:
        sections = [(first, sections[0][1])]
    return [(heading, lines) for heading, lines in sections if lines]


def make_styles() -> dict[str, ParagraphStyle]:
    """The few paragraph styles the documents use."""
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle

    body = ParagraphStyle("body", fontName=FONT, fontSize=BODY_SIZE, leading=BODY_LEADING)
    return {
        "body": body,
        "org": ParagraphStyle(
            "org", body, fontName=BOLD, fontSize=15, leading=18, textColor=colors.navy
        ),
        "small": ParagraphStyle("small", body, fontSize=8.5, leading=11, textColor=colors.grey),
        "title": ParagraphStyle("title", body, fontName=BOLD, fontSize=13, leading=18),
        "heading": ParagraphStyle("heading", body, fontName=BOLD, spaceBefore=8, spaceAfter=2),
    }


def paragraph(markup: str, style: ParagraphStyle) -> Flowable:
    """A paragraph of reportlab markup (callers escape the text they put in)."""
    from reportlab.platypus import Paragraph

    return Paragraph(markup, style)


def letterhead(sender: Sender, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Organisation name, address and telephone, then a rule."""
    from reportlab.lib import colors
    from reportlab.platypus import HRFlowable

    contact = f"{sender.address} \u00b7 Tel {sender.phone}"
    return [
        paragraph(escape(sender.organisation), st["org"]),
        paragraph(escape(contact), st["small"]),
        HRFlowable(width="100%", thickness=1, color=colors.navy, spaceBefore=4, spaceAfter=12),
    ]


def section(heading: str, lines: list[str], st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """A bold heading (none when empty) and one paragraph per line."""
    title = [paragraph(escape(heading), st["heading"])] if heading else []
    return title + [paragraph(escape(line), st["body"]) for line in lines]


def labelled(label: str, value: str) -> str:
    """'<b>Label:</b> value' markup with the value escaped."""
    return f"<b>{escape(label)}:</b> {escape(value)}"


def patient_line(scenario: Scenario) -> str:
    """Name, date of birth, MRN and sex on one line of markup."""
    patient = scenario.case.patient
    parts = [
        labelled("Re", display_name(patient.name)),
        labelled("DOB", format_dob(patient.birth_date)),
        labelled("MRN", patient.mrn),
        labelled("Sex", patient.sex),
    ]
    return " &nbsp; ".join(parts)


def referral_story(scenario: Scenario, item: Input, body: str) -> list[Flowable]:
    """A GP's referral letter to radiology."""
    from reportlab.platypus import Spacer

    st, sender = make_styles(), sender_of(scenario, item)
    story = letterhead(sender, st) + [
        paragraph(escape(format_date(document_time(scenario.id).date())), st["body"]),
        Spacer(1, 8),
        paragraph(escape(f"To: {RADIOLOGY}"), st["body"]),
        Spacer(1, 10),
        paragraph("Dear Colleague,", st["body"]),
        Spacer(1, 6),
        paragraph(patient_line(scenario), st["body"]),
        paragraph(labelled("Examination requested", examination(scenario)), st["body"]),
    ]
    story += section("Reason for referral", [indication(scenario)], st)
    for heading, lines in referral_sections(body):
        story += section(heading, lines, st)
    return story + signature(sender, "Thank you for seeing this patient.", st)


def signature(sender: Sender, closing: str, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Closing sentence, sign-off, name and role."""
    from reportlab.platypus import Spacer

    return [
        Spacer(1, 10),
        paragraph(escape(closing), st["body"]),
        Spacer(1, 8),
        paragraph("Yours sincerely,", st["body"]),
        Spacer(1, 22),
        paragraph(f"<b>{escape(sender.person)}</b>", st["body"]),
        paragraph(escape(f"{sender.role}, {sender.organisation}"), st["body"]),
    ]


def report_table(scenario: Scenario, st: dict[str, ParagraphStyle]) -> Flowable:
    """The demographics and examination grid at the top of a report."""
    from reportlab.platypus import Table

    patient, when = scenario.case.patient, document_time(scenario.id)
    accession = f"ACC-{hash_number(scenario.id, 'accession') % 10**7:07d}"
    cells = [
        ("Patient", display_name(patient.name), "MRN", patient.mrn),
        ("Date of birth", format_dob(patient.birth_date), "Sex", patient.sex),
        ("Examination", examination(scenario), "Exam date", format_date(when.date())),
        ("Referrer", pick(CLINICS, scenario.id, "referrer").person, "Accession", accession),
    ]
    rows = [
        [paragraph(labelled(a, b), st["body"]), paragraph(labelled(c, d), st["body"])]
        for a, b, c, d in cells
    ]
    return Table(rows, colWidths=[(PAGE_WIDTH - 2 * MARGIN) * 0.6, (PAGE_WIDTH - 2 * MARGIN) * 0.4])


def report_story(scenario: Scenario, item: Input, body: str) -> list[Flowable]:
    """An outside radiology report (or another kind of document from the imaging centre)."""
    from reportlab.platypus import Spacer

    st, sender = make_styles(), sender_of(scenario, item)
    first = "FINDINGS" if item.kind in REPORT_KINDS else "DETAILS"
    story = letterhead(sender, st) + [
        paragraph(escape(TITLES[item.kind]), st["title"]),
        report_table(scenario, st),
    ]
    story += section("CLINICAL INDICATION", [indication(scenario)], st)
    for heading, lines in report_sections(body, first):
        story += section(heading, lines, st)
    signed = f"Electronically signed on {format_date(document_time(scenario.id).date())}."
    return story + [Spacer(1, 14)] + section(f"{sender.person}, {sender.role}", [signed], st)


def build_story(scenario: Scenario, item: Input, body: str) -> list[Flowable]:
    """The document's flowables: a referral letter, or a report-style document for other kinds."""
    if item.kind == "referral":
        return referral_story(scenario, item, body)
    return report_story(scenario, item, body)


def draw_footer(canvas: Canvas, page: int, sender: Sender, patient: str) -> None:
    """Sender, confidentiality notice, patient and page number at the foot of each page."""
    canvas.saveState()
    canvas.setFont(FONT, 7.5)
    canvas.setFillGray(0.4)
    canvas.drawString(MARGIN, 40, f"{sender.organisation} \u00b7 {sender.address}")
    canvas.drawString(MARGIN, 30, f"Confidential patient information \u00b7 {patient}")
    canvas.drawRightString(PAGE_WIDTH - MARGIN, 30, f"Page {page}")
    canvas.restoreState()
