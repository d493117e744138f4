"""PDF clinical documents (referral letters, outside reports) that hide the payload in the PDF.

Written with reportlab in invariant mode, so the same scenario always gives the same bytes.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from xml.sax.saxutils import escape

from sandbox.carriers.base import Artifact, Location, planted_text, register
from sandbox.carriers.pdf_layout import (
    BOTTOM_MARGIN,
    FONT,
    MARGIN,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    DocumentInfo,
    build_story,
    display_name,
    document_info,
    draw_footer,
    sender_of,
)
from sandbox.errors import CarrierError, MissingDependencyError
from sandbox.scenarios.models import PAYLOAD_MARK, Input, Payload, Scenario

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.platypus import Flowable
    from reportlab.platypus.doctemplate import BaseDocTemplate

TECHNIQUES = (
    "visible",
    "white-text",
    "tiny-text",
    "invisible",
    "off-page",
    "metadata",
    "annotation",
)
# ISO 32000-1 Annex C: a string holds at most 32,767 bytes; this many characters fit as UTF-16.
MAX_STRING_CHARS = 16_383
GAP = 13.0  # one blank line between the last line of the document and a hidden block
HIDDEN_FLAG = 2  # annotation flag bit 2, Hidden: not displayed, not printed


@dataclass(frozen=True)
class TextLook:
    """How a drawn technique sets its text."""

    size: float
    leading: float
    rgb: tuple[float, float, float]
    render_mode: Literal[0, 3]  # 0 fill, 3 neither fill nor stroke


DRAWN = {
    "white-text": TextLook(10, 13, (1, 1, 1), 0),
    "tiny-text": TextLook(1, 1.2, (0, 0, 0), 0),
    "invisible": TextLook(10, 13, (0, 0, 0), 3),  # Tr 3: neither fill nor stroke
    "off-page": TextLook(10, 13, (0, 0, 0), 0),
}


LOCATIONS = tuple(
    Location("referral", technique=t) for t in ("visible", "white-text", "tiny-text", "invisible")
)


@register("pdf", LOCATIONS, "PDF letters: visible, white, tiny or invisible text, off-page")
def build_pdf(scenario: Scenario, item: Input) -> Artifact:
    """Lay out the clinical document and hide the payload by its technique; clean: leave it out."""
    technique = technique_of(item.payload)
    planted = planted_text(scenario, item.payload) if item.payload else ""
    require_reportlab()
    check_payload(planted, technique)
    check_case_text(scenario, item)
    return Artifact(
        name=f"{item.kind}.pdf",
        media_type="application/pdf",
        kind=item.kind,
        data=render(scenario, item, planted, technique),
        has_payload=bool(planted),
    )


def require_reportlab() -> None:
    """Fail with the extra to install when reportlab is missing."""
    try:
        import reportlab  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("reportlab", "carriers") from exc


def technique_of(payload: Payload | None) -> str:
    """The payload's technique (visible when unset), after rejecting a field or a typo."""
    allowed = ", ".join(TECHNIQUES)
    if payload is None:
        return "visible"
    if payload.field is not None:
        raise CarrierError(
            f"pdf payload: field '{payload.field}' is not used by the pdf carrier; "
            "the technique alone says where the payload goes.",
            hint=f"Remove payload.field and set payload.technique (allowed: {allowed}).",
        )
    technique = payload.technique or "visible"
    if technique not in TECHNIQUES:
        raise CarrierError(
            f"pdf payload: technique '{technique}' is unknown (allowed: {allowed}).",
            hint="Set payload.technique to one of them.",
        )
    return technique


def check_payload(planted: str, technique: str) -> None:
    """Reject a payload the technique cannot carry whole."""
    if technique in ("metadata", "annotation"):
        if len(planted) > MAX_STRING_CHARS:
            raise CarrierError(
                f"pdf payload: {len(planted)} characters do not fit a PDF string for "
                f"{technique} (at most {MAX_STRING_CHARS}).",
                hint="Shorten the payload or use off-page, which has no length limit.",
            )
        return
    check_drawable(planted, "payload", "Replace it, or use metadata or annotation (any Unicode).")


def check_case_text(scenario: Scenario, item: Input) -> None:
    """Reject scenario text that the document would draw as black boxes."""
    case = scenario.case
    for what, text in [
        ("content", item.content),
        ("study.indication", case.study.indication),
        ("study.description", case.study.description),
        ("patient.name", case.patient.name),
    ]:
        check_drawable(text, what, f"Replace the character in the scenario's {what}.")


def check_drawable(text: str, what: str, hint: str) -> None:
    """Reject characters that the standard fonts would draw as a black box."""
    from reportlab.pdfbase.pdfmetrics import getFont

    font = getFont(FONT)
    encodings: list[str] = [f.encName for f in [font, *font.substitutionFonts]]
    for char in dict.fromkeys(text.replace("\r", "").replace("\n", "")):
        if not any(can_encode(char, encoding) for encoding in encodings):
            raise CarrierError(
                f"pdf {what}: character U+{ord(char):04X} cannot be drawn with the PDF's "
                "standard fonts (Helvetica with Symbol and ZapfDingbats).",
                hint=hint,
            )


def can_encode(char: str, encoding: str) -> bool:
    """Whether a font encoding has the character."""
    try:
        char.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def visible_body(content: str, planted: str, technique: str) -> str:
    """The body text: the visible payload where `{payload}` stands (or appended); else no mark."""
    shown = planted if technique == "visible" else ""
    if PAYLOAD_MARK in content:
        return content.replace(PAYLOAD_MARK, shown)
    return f"{content.rstrip()}\n{shown}" if shown else content


def render(scenario: Scenario, item: Input, planted: str, technique: str) -> bytes:
    """The PDF bytes of the document, with the payload where the technique puts it."""
    from reportlab.platypus import SimpleDocTemplate

    info = document_info(scenario, item)
    if planted and technique == "metadata":
        info = dataclasses.replace(info, subject=planted)
    story = build_story(scenario, item, visible_body(item.content, planted, technique))
    if planted and technique in DRAWN:
        story.append(hidden_block(planted, technique))
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=(PAGE_WIDTH, PAGE_HEIGHT),
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN * 0.8,
        bottomMargin=BOTTOM_MARGIN,
        invariant=1,  # no wall-clock date, no random document ID
        pageCompression=1,
    )
    note = planted if technique == "annotation" else ""
    on_page = page_decorator(scenario, item, info, note)
    document.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()


def page_decorator(
    scenario: Scenario, item: Input, info: DocumentInfo, note: str
) -> Callable[[Canvas, BaseDocTemplate], None]:
    """The per-page callback: footer on every page; metadata and the note on page 1."""
    sender = sender_of(scenario, item)
    patient = f"{display_name(scenario.case.patient.name)} ({scenario.case.patient.mrn})"

    def on_page(canvas: Canvas, _document: BaseDocTemplate) -> None:
        page = canvas.getPageNumber()
        draw_footer(canvas, page, sender, patient)
        if page == 1:
            write_metadata(canvas, info)
            if note:
                add_note(canvas, note)

    return on_page


def write_metadata(canvas: Canvas, info: DocumentInfo) -> None:
    """Fill the Info dictionary and attach an XMP packet saying the same."""
    from reportlab.pdfbase.pdfdoc import XMP

    canvas.setTitle(info.title)
    canvas.setAuthor(info.author)
    canvas.setSubject(info.subject)
    canvas.setKeywords(info.keywords)
    canvas.setCreator(info.creator)
    stamp = info.created.strftime("D:%Y%m%d%H%M%S+00'00'")
    canvas.setDateFormatter(lambda *_: stamp)
    packet = xmp_packet(info)
    canvas.setCatalogEntry("Metadata", XMP(creator=lambda _doc: packet))


def xmp_packet(info: DocumentInfo) -> bytes:
    """An XMP packet with dc:title, dc:creator, dc:description (= Subject) and dates."""
    when = info.created.strftime("%Y-%m-%dT%H:%M:%S+00:00")

    def alt(value: str) -> str:
        return f'<rdf:Alt><rdf:li xml:lang="x-default">{escape(value)}</rdf:li></rdf:Alt>'

    fields = [
        "<dc:format>application/pdf</dc:format>",
        f"<dc:title>{alt(info.title)}</dc:title>",
        f"<dc:creator><rdf:Seq><rdf:li>{escape(info.author)}</rdf:li></rdf:Seq></dc:creator>",
        f"<dc:description>{alt(info.subject)}</dc:description>",
        f"<pdf:Keywords>{escape(info.keywords)}</pdf:Keywords>",
        f"<xmp:CreatorTool>{escape(info.creator)}</xmp:CreatorTool>",
        f"<xmp:CreateDate>{when}</xmp:CreateDate>",
        f"<xmp:ModifyDate>{when}</xmp:ModifyDate>",
    ]
    return "\n".join([XMP_HEAD, *fields, XMP_TAIL]).encode("utf-8")


XMP_HEAD = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:pdf="http://ns.adobe.com/pdf/1.3/" xmlns:xmp="http://ns.adobe.com/xap/1.0/">"""
XMP_TAIL = """</rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>"""


def add_note(canvas: Canvas, text: str) -> None:
    """A hidden /Text (sticky-note) annotation in the right margin of page 1."""
    left, top = PAGE_WIDTH - MARGIN + 10, PAGE_HEIGHT - 110
    canvas.textAnnotation(text, Rect=(left, top - 18, left + 18, top), relative=0, F=HIDDEN_FLAG)


def wrap_lines(text: str, size: float) -> list[str]:
    """The payload broken into lines that fit the body width at `size`."""
    from reportlab.lib.utils import simpleSplit

    width = PAGE_WIDTH - 2 * MARGIN
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines += simpleSplit(paragraph, FONT, size, width) or [""]
    return lines


def hidden_block(planted: str, technique: str) -> Flowable:
    """A zero-height flowable that draws the payload below the last line without moving it."""
    from reportlab.platypus.flowables import CallerMacro

    look = DRAWN[technique]
    lines = wrap_lines(planted, look.size)

    def check_room(_macro: CallerMacro, _width: float, height: float) -> None:
        needed = GAP + len(lines) * look.leading
        if technique != "off-page" and needed > height:
            raise CarrierError(
                f"pdf payload: {len(planted)} characters of {technique} need {len(lines)} lines "
                f"({needed:.0f} pt) but only {height:.0f} pt are free below the last line of "
                "the document.",
                hint="Shorten the payload or the content, or use tiny-text or off-page.",
            )

    # reportlab calls drawCallable(macro) with one argument; its stubs declare three.
    def draw(macro: CallerMacro, *_: float) -> None:
        draw_hidden(macro.canv, lines, look, off_page=technique == "off-page")

    return CallerMacro(draw, check_room)


def draw_hidden(canvas: Canvas, lines: list[str], look: TextLook, off_page: bool) -> None:
    """Draw the lines below the current point, or left of the page for off-page."""
    x = 0.0
    if off_page:
        left, _bottom = canvas.absolutePosition(0, 0)
        x = -left - PAGE_WIDTH  # the whole block lies left of the MediaBox
    canvas.saveState()
    text = canvas.beginText(x, -GAP - look.size)
    text.setTextRenderMode(look.render_mode)
    text.setFillColorRGB(*look.rgb)
    text.setFont(FONT, look.size, look.leading)
    for line in lines:
        text.textLine(line)
    canvas.drawText(text)
    canvas.restoreState()


__all__ = ["TECHNIQUES", "build_pdf"]
