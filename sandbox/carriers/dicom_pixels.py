"""Synthetic grey-scale pixels for DICOM images: a smooth phantom, and text burned into it.

Text is drawn with Pillow's built-in bitmap font (fixed glyphs, so the pixels are the same on
every machine) and enlarged by whole pixels; no anti-aliasing, no randomness.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from sandbox.errors import CarrierError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

IMAGE_SIZE = 512
# Upscale factor of the 11-pixel bitmap font: 3 gives ~27 px glyphs, 1 gives ~9 px (1.8 %).
TEXT_SCALE = {"visible": 3, "low-contrast": 3, "tiny": 1}
MARGIN_PX = 8
# Low-contrast text sits this fraction of the display window above its background: about
# five grey levels of 256 on screen, far below what a reader notices at a glance.
LOW_CONTRAST_FRACTION = 0.02
# Phantom ellipses: centre x, centre y, radius x, radius y, added intensity (0..1 of full scale).
_ELLIPSES = (
    (0.0, 0.05, 0.85, 0.65, 0.45),
    (-0.38, 0.0, 0.28, 0.42, -0.33),
    (0.38, 0.0, 0.28, 0.42, -0.33),
    (0.0, 0.47, 0.1, 0.1, 0.42),
    (0.0, -0.2, 0.12, 0.16, 0.12),
)
_EDGE = 0.06


def make_phantom(max_value: int, size: int = IMAGE_SIZE) -> NDArray[np.float64]:
    """A smooth body-like phantom scaled to 0..max_value (floats, rounded by the caller).

    Only +, -, *, / and comparisons (exactly rounded in IEEE 754) are used, so the result is
    bit-identical on every CPU.
    """
    import numpy as np

    axis = (np.arange(size, dtype=np.float64) + 0.5) * (2.0 / size) - 1.0
    y, x = np.meshgrid(axis, axis, indexing="ij")
    image = np.zeros((size, size), dtype=np.float64)
    for cx, cy, rx, ry, value in _ELLIPSES:
        r2 = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2
        t = np.clip((1.0 - r2) / _EDGE, 0.0, 1.0)
        image += value * t * t * (3.0 - 2.0 * t)
    image += 0.04 * (1.0 - y) * (image > 0.05)
    return np.clip(image, 0.0, 1.0) * max_value


def burn_text(
    pixels: NDArray[Any], text: str, technique: str, max_value: int, window: float
) -> NDArray[Any]:
    """Return `pixels` with `text` drawn in the top-left corner, as `technique` hides it.

    Args:
        pixels: The clean image (stored values).
        text: The payload text, wrapped to the image width.
        technique: visible (full white), low-contrast (a few grey levels above the
            background under the default window) or tiny (full white, ~1.8 % of the height).
        max_value: The largest stored value (2**BitsStored - 1).
        window: The default window width in stored units.

    Raises:
        CarrierError: The text has characters the font lacks or does not fit the image.
    """
    import numpy as np

    mask = _text_mask(text, technique, pixels.shape)
    out = pixels.copy()
    if technique == "low-contrast":
        delta = max(1, round(window * LOW_CONTRAST_FRACTION))
        raised = np.minimum(pixels.astype(np.int64) + delta, max_value)
        out[mask] = raised[mask].astype(pixels.dtype)
    else:
        out[mask] = max_value
    return out


def _text_mask(text: str, technique: str, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    _check_latin1(text)
    scale = TEXT_SCALE[technique]
    rows, cols = shape[0], shape[1]
    font = ImageFont.load_default_imagefont()
    char_w, line_h = int(font.getbbox("0")[2]), int(font.getbbox("Ag")[3]) + 1
    margin = max(1, MARGIN_PX // scale)
    lines = _wrap(text, (cols // scale - 2 * margin) // char_w)
    max_lines = (rows // scale - 2 * margin) // line_h
    if len(lines) > max_lines:
        raise _too_long(text, technique, max_lines, (cols // scale - 2 * margin) // char_w)
    canvas = Image.new("L", (-(-cols // scale), -(-rows // scale)), 0)
    draw = ImageDraw.Draw(canvas)
    for number, line in enumerate(lines):
        draw.text((margin, margin + number * line_h), line, fill=255, font=font)
    small = np.asarray(canvas) > 0
    return np.repeat(np.repeat(small, scale, axis=0), scale, axis=1)[:rows, :cols]


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines():
        lines.extend(textwrap.wrap(paragraph, width) or [""])
    return lines


def _check_latin1(text: str) -> None:
    odd = sorted({char for char in text if ord(char) > 0xFF or not char.isprintable()} - {"\n"})
    if odd:
        shown = ", ".join(f"U+{ord(char):04X}" for char in odd[:5])
        raise CarrierError(
            f"dicom payload: field 'pixels' draws Latin-1 text only; the payload has {shown}.",
            hint="Use printable Latin-1 characters for pixel text, or put the payload in a "
            "header field such as ImageComments (UTF-8).",
        )


def _too_long(text: str, technique: str, max_lines: int, per_line: int) -> CarrierError:
    return CarrierError(
        f"dicom payload: {len(text)} characters do not fit the {IMAGE_SIZE}x{IMAGE_SIZE} image "
        f"as {technique} text (at most {max_lines} lines of {per_line} characters).",
        hint="Shorten the payload, use technique tiny (smaller text), or choose a header field "
        "such as ImageComments.",
    )
