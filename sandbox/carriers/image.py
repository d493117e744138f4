"""PNG images (a synthetic grey-scale phantom of the case) with the payload drawn in as text.

The image is what a PACS export, a screenshot or a secondary capture hands a vision model:
640x640 8-bit grey, the case's sized findings drawn as round opacities (the patient's right on
the viewer's left), and the operator's annotation burned in at the bottom left (patient, MRN,
birth date, modality, body part, study description and the input's `content`). The payload is
drawn at the top left in `payload.technique`:

- visible (default): white text, about 33 px a line (5 % of the height), readable;
- low-contrast: the same text only 5 grey levels (of 256) above the pixels under it;
- tiny: white text of the 11-pixel bitmap font unscaled, at most 11 px (1.7 % of the height).

`payload.field` does not apply (the payload is in the pixels) and is an error if set. The clean
twin is the same image without the payload. Bytes are deterministic: only IHDR, IDAT and IEND
chunks (no time, text or physical-size chunks), pixels computed with exactly rounded arithmetic
and a fixed bitmap font.
"""

from __future__ import annotations

import functools
import io
import textwrap
from typing import TYPE_CHECKING, Any

from sandbox.carriers.base import Artifact, Location, planted_text, register
from sandbox.carriers.dicom_pixels import make_phantom
from sandbox.errors import CarrierError, MissingDependencyError
from sandbox.scenarios.models import PAYLOAD_MARK, Finding, Input, Payload, Scenario

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

MEDIA_TYPE = "image/png"
IMAGE_SIZE = 640
MM_PER_PIXEL = 0.625  # a 400 mm field of view, so a finding's size_mm gives its size in pixels
TECHNIQUES = ("visible", "low-contrast", "tiny")
DEFAULT_TECHNIQUE = "visible"
# Whole-pixel upscale of the bitmap font (6x11 glyphs on a 12-pixel line).
TEXT_SCALE = {"visible": 3, "low-contrast": 3, "tiny": 1}
LOW_CONTRAST_LEVELS = 5
MARGIN_PX = 8
ANNOTATION_GREY = 235
MAX_ANNOTATION_LINES = 8
# Where sized findings are drawn (x centre in -1..1, image coordinates): the patient's right is
# on the viewer's left; several findings on one side go one below the other.
_SIDE_X = {
    "right": (-0.38,),
    "left": (0.38,),
    "bilateral": (-0.38, 0.38),
    "midline": (0.0,),
    "none": (0.0,),
}
_LESION_Y = (-0.15, 0.05, 0.25, -0.3)
_LESION_GAIN = 0.3
_EDGE = 0.25


LOCATIONS = tuple(Location("image", technique=t, pixels=True) for t in TECHNIQUES)


@register("image", LOCATIONS, "PNG images with the payload drawn into the pixels")
def build_image_png(scenario: Scenario, item: Input) -> Artifact:
    """Render the case's image as a PNG with the payload drawn in; clean: without it."""
    technique = technique_of(item.payload)
    planted = planted_text(scenario, item.payload) if item.payload else ""
    require_dependencies()
    pixels = render_pixels(scenario, item, planted, technique)
    return Artifact(
        name="image.png",
        media_type=MEDIA_TYPE,
        kind=item.kind,
        data=encode_png(pixels),
        has_payload=bool(planted),
    )


def technique_of(payload: Payload | None) -> str:
    """The payload's technique (visible when unset); a field or unknown technique is an error."""
    if payload is None:
        return DEFAULT_TECHNIQUE
    if payload.field is not None:
        raise CarrierError(
            f"image payload: field '{payload.field}' does not apply; the image carrier draws "
            "the payload into the pixels.",
            hint="Remove payload.field and choose payload.technique: " + ", ".join(TECHNIQUES),
        )
    technique = payload.technique or DEFAULT_TECHNIQUE
    if technique not in TECHNIQUES:
        raise CarrierError(
            f"image payload: technique '{technique}' is unknown (known: {', '.join(TECHNIQUES)}).",
            hint="Fix payload.technique.",
        )
    return technique


def require_dependencies() -> None:
    """Import numpy and Pillow, or raise MissingDependencyError naming the extra."""
    import importlib

    for module in ("numpy", "PIL"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise MissingDependencyError(module, "carriers") from None


def render_pixels(scenario: Scenario, item: Input, planted: str, technique: str) -> NDArray[Any]:
    """The 8-bit image: phantom and findings, the annotation, then the payload if any."""
    import numpy as np

    pixels = phantom_pixels(scenario.case.findings)
    annotation = annotation_lines(scenario, item)
    top = IMAGE_SIZE - MARGIN_PX - len(annotation) * line_height(1)
    pixels[text_mask(annotation, 1, top)] = ANNOTATION_GREY
    if not planted:
        return pixels
    scale = TEXT_SCALE[technique]
    lines = payload_lines(planted, technique, bottom=top - MARGIN_PX)
    mask = text_mask(lines, scale, _round_up(MARGIN_PX, scale))
    if technique == "low-contrast":
        raised = np.minimum(pixels.astype(np.int16) + LOW_CONTRAST_LEVELS, 255)
        pixels[mask] = raised[mask].astype(np.uint8)
    else:
        pixels[mask] = 255
    return pixels


def phantom_pixels(findings: list[Finding]) -> NDArray[np.uint8]:
    """The body phantom with a round opacity per finding that has a size."""
    import numpy as np

    image = make_phantom(1, IMAGE_SIZE)
    axis = (np.arange(IMAGE_SIZE, dtype=np.float64) + 0.5) * (2.0 / IMAGE_SIZE) - 1.0
    y, x = np.meshgrid(axis, axis, indexing="ij")
    for cx, cy, radius in lesion_spots(findings):
        r2 = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (radius * radius)
        t = np.clip((1.0 - r2) / _EDGE, 0.0, 1.0)
        image += _LESION_GAIN * t * t * (3.0 - 2.0 * t)
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def lesion_spots(findings: list[Finding]) -> list[tuple[float, float, float]]:
    """Centre (x, y) and radius, in -1..1 image units, of each sized finding's opacity."""
    spots: list[tuple[float, float, float]] = []
    used: dict[float, int] = {}
    for finding in findings:
        if finding.size_mm is None or finding.size_mm <= 0:
            continue
        radius = min(finding.size_mm / MM_PER_PIXEL, IMAGE_SIZE / 4) / IMAGE_SIZE
        for cx in _SIDE_X[finding.laterality]:
            row = used.get(cx, 0)
            used[cx] = row + 1
            spots.append((cx, _LESION_Y[row % len(_LESION_Y)], radius))
    return spots


def annotation_lines(scenario: Scenario, item: Input) -> list[str]:
    """The operator's annotation: patient, study and the input's content, wrapped."""
    if PAYLOAD_MARK in item.content:
        raise CarrierError(
            "image input: content has a '{payload}' mark, but the image carrier draws the "
            "payload at the top left, never inside the annotation.",
            hint="Remove the mark; choose where the payload shows with payload.technique.",
        )
    patient, study = scenario.case.patient, scenario.case.study
    text = "\n".join(
        [
            f"{patient.name}   {patient.mrn}",
            f"DOB {patient.birth_date}   Sex {patient.sex}",
            f"{study.modality} {study.body_part}   {study.description}".rstrip(),
            item.content.strip(),
        ]
    ).strip()
    check_drawable(
        text,
        "image input: the annotation (patient, study and content)",
        "Write the patient name, study description and content in Latin-1 characters.",
    )
    lines = wrap(text, chars_per_line(1))
    if len(lines) > MAX_ANNOTATION_LINES:
        raise CarrierError(
            f"image input: the annotation takes {len(lines)} lines; at most "
            f"{MAX_ANNOTATION_LINES} lines of {chars_per_line(1)} characters fit at the bottom "
            "of the image (patient, study and content).",
            hint="Shorten the input's content, or move long text to a text, pdf or dicom input.",
        )
    return lines


def payload_lines(planted: str, technique: str, bottom: int) -> list[str]:
    """The payload wrapped to the image width; an error if it does not fit above `bottom`."""
    check_drawable(
        planted,
        "image payload",
        "Use printable Latin-1 text (transforms such as unicode-tags, zero-width and homoglyphs "
        "cannot be drawn), or use a text, pdf or dicom input.",
    )
    scale = TEXT_SCALE[technique]
    per_line = chars_per_line(scale)
    lines = wrap(planted, per_line)
    max_lines = (bottom - _round_up(MARGIN_PX, scale)) // line_height(scale)
    if len(lines) > max_lines:
        raise CarrierError(
            f"image payload: {len(planted)} characters do not fit the {IMAGE_SIZE}x{IMAGE_SIZE} "
            f"image as {technique} text (at most {max_lines} lines of {per_line} characters).",
            hint="Shorten the payload" + (", or use technique tiny." if scale > 1 else "."),
        )
    return lines


def check_drawable(text: str, what: str, hint: str) -> None:
    """Raise CarrierError if `text` has characters the bitmap font cannot draw."""
    odd = sorted({char for char in text if ord(char) > 0xFF or not char.isprintable()} - {"\n"})
    if odd:
        shown = ", ".join(f"U+{ord(char):04X}" for char in odd[:5])
        raise CarrierError(
            f"{what}: the image font draws printable Latin-1 only; the text has {shown}.",
            hint=hint,
        )


def text_mask(lines: list[str], scale: int, top: int) -> NDArray[np.bool_]:
    """Pixels covered by `lines` drawn from (MARGIN_PX, top), glyphs enlarged `scale` times."""
    import numpy as np
    from PIL import Image, ImageDraw

    font = _font()
    small = -(-IMAGE_SIZE // scale)
    canvas = Image.new("L", (small, small), 0)
    draw = ImageDraw.Draw(canvas)
    left, first = _round_up(MARGIN_PX, scale) // scale, top // scale
    for number, line in enumerate(lines):
        draw.text((left, first + number * line_height(1)), line, fill=255, font=font)
    ink = np.asarray(canvas) > 0
    grown = np.repeat(np.repeat(ink, scale, axis=0), scale, axis=1)
    return grown[:IMAGE_SIZE, :IMAGE_SIZE]


def line_height(scale: int) -> int:
    """Height of one text line in pixels (glyph box plus one pixel of leading, times scale)."""
    return (int(_font().getbbox("Ag")[3]) + 1) * scale


def chars_per_line(scale: int) -> int:
    """How many characters fit between the margins at this scale."""
    char_width = int(_font().getbbox("0")[2]) * scale
    return (IMAGE_SIZE - 2 * _round_up(MARGIN_PX, scale)) // char_width


def wrap(text: str, width: int) -> list[str]:
    """Wrap each paragraph to `width` characters; blank lines are kept."""
    lines: list[str] = []
    for paragraph in text.splitlines():
        lines.extend(textwrap.wrap(paragraph, width) or [""])
    return lines


def encode_png(pixels: NDArray[Any]) -> bytes:
    """An 8-bit grey PNG with only IHDR, IDAT and IEND chunks."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


@functools.cache
def _font() -> Any:
    from PIL import ImageFont

    return ImageFont.load_default_imagefont()


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step
