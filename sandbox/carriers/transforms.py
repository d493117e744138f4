"""Payload transforms (Unicode smuggling, homoglyphs, base64, translation) and their reverse view.

Pure, deterministic and stdlib-only: a carrier plants `apply_transforms(...)`; a report shows
`reveal(...)` so a reviewer can read what was hidden.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

from sandbox.errors import ScenarioError
from sandbox.scenarios.models import CANARY_MARK, Payload, TransformName

TAG_BASE = 0xE0000
"""Offset of the Unicode Tags block: printable ASCII `c` is smuggled as `chr(TAG_BASE + ord(c))`."""
TAG_BEGIN = "\U000e0001"
"""U+E0001 LANGUAGE TAG: opens a run of tag characters."""
TAG_END = "\U000e007f"
"""U+E007F CANCEL TAG: closes a run of tag characters."""
ZERO_WIDTH_SPACE = "\u200b"
"""The character the zero-width transform inserts between letters."""
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
"""Invisible characters `reveal` drops: ZW space, ZW non-joiner, ZW joiner, word joiner, BOM."""
BASE64_PREFIX = "Base64-encoded addendum: "
"""Framing in front of the base64 text, inviting a model to decode it."""
HOMOGLYPHS: dict[str, str] = {
    "a": "\u0430",
    "c": "\u0441",
    "e": "\u0435",
    "o": "\u043e",
    "p": "\u0440",
    "x": "\u0445",
    "y": "\u0443",
    "A": "\u0410",
    "B": "\u0412",
    "C": "\u0421",
    "E": "\u0415",
    "H": "\u041d",
    "K": "\u041a",
    "M": "\u041c",
    "O": "\u041e",
    "P": "\u0420",
    "T": "\u0422",
    "X": "\u0425",
}
"""Latin letter -> Cyrillic look-alike. Letters without a common look-alike stay Latin."""

_TO_CYRILLIC = str.maketrans(HOMOGLYPHS)
_TO_LATIN = str.maketrans({cyrillic: latin for latin, cyrillic in HOMOGLYPHS.items()})
_TAG_ASCII = {TAG_BASE + code: chr(code) for code in range(0x20, 0x7F)}
_FROM_TAGS: dict[int, str | None] = {**_TAG_ASCII, ord(TAG_BEGIN): None, ord(TAG_END): None}
_DROP_ZERO_WIDTH: dict[int, None] = {ord(char): None for char in ZERO_WIDTH}
_WORD = re.compile(r"\S+")


def encode_tags(text: str) -> str:
    """Smuggle text as invisible Unicode tag characters ("ASCII smuggling").

    Each printable ASCII character (U+0020-U+007E) becomes its twin in the Tags block; anything
    else (line breaks, non-ASCII letters) is kept as is. The run is wrapped in LANGUAGE TAG ...
    CANCEL TAG. The result renders as nothing, so a carrier that wants a visible decoy puts it
    after ordinary visible text.

    Args:
        text: The text to hide.

    Returns:
        The invisible text, or "" for "".
    """
    if not text:
        return ""
    hidden = "".join(chr(TAG_BASE + ord(c)) if " " <= c <= "~" else c for c in text)
    return f"{TAG_BEGIN}{hidden}{TAG_END}"


def insert_zero_width(text: str) -> str:
    """Insert a zero-width space between every two characters of each word.

    Whitespace between words is kept, so the text looks unchanged but no longer matches a
    keyword filter. The canary is split too: detectors are expected to strip zero-width first.

    Args:
        text: The text to break up.

    Returns:
        The text with U+200B inside every word of two or more characters.
    """
    return _WORD.sub(lambda word: ZERO_WIDTH_SPACE.join(word.group()), text)


def substitute_homoglyphs(text: str, canary: str) -> str:
    """Replace Latin letters with Cyrillic look-alikes (`HOMOGLYPHS`), except in the canary.

    The canary is left as written, even when zero-width characters were already inserted into
    it, so that a model that copies it still produces a matchable token.

    Args:
        text: The text to disguise.
        canary: The scenario's canary token; "" protects nothing.

    Returns:
        The text with every mappable letter outside the canary swapped.
    """
    if not canary:
        return text.translate(_TO_CYRILLIC)
    gap = "[" + "".join(sorted(ZERO_WIDTH)) + "]*"
    pattern = re.compile(gap.join(re.escape(char) for char in canary))
    parts: list[str] = []
    end = 0
    for match in pattern.finditer(text):
        parts += [text[end : match.start()].translate(_TO_CYRILLIC), match.group()]
        end = match.end()
    parts.append(text[end:].translate(_TO_CYRILLIC))
    return "".join(parts)


def encode_base64(text: str) -> str:
    """Base64-encode the UTF-8 text behind a framing line that invites decoding.

    Args:
        text: The text to encode.

    Returns:
        `BASE64_PREFIX` followed by the standard base64 of the text.
    """
    return BASE64_PREFIX + base64.b64encode(text.encode("utf-8")).decode("ascii")


TRANSFORMS: dict[TransformName, Callable[[str, str], str]] = {
    "unicode-tags": lambda text, _canary: encode_tags(text),
    "zero-width": lambda text, _canary: insert_zero_width(text),
    "homoglyphs": substitute_homoglyphs,
    "base64": lambda text, _canary: encode_base64(text),
}
"""The text transforms by their YAML name, each `(text, canary) -> text`. `language` is not here:
it chooses the starting text instead (see `apply_transforms`)."""


def apply_transforms(text: str, payload: Payload, canary: str) -> str:
    """Turn the planted text into what the carrier writes, following `payload.transforms`.

    `language` takes effect first wherever it is listed: the payload's `translation`, with its
    `{canary}` replaced, becomes the starting text. The other transforms then run in the listed
    order, each on the output of the one before.

    Args:
        text: The payload text with `{canary}` already replaced by the canary.
        payload: The payload, for its `transforms` and `translation`.
        canary: The scenario's canary token.

    Returns:
        The transformed text; `text` itself when there are no transforms.

    Raises:
        ScenarioError: `language` is listed but the payload has no `translation`.
    """
    if "language" in payload.transforms:
        if payload.translation is None:
            raise ScenarioError(
                "payload lists the 'language' transform but has no translation",
                hint="Add `translation:` to the payload, or drop 'language' from transforms.",
            )
        text = payload.translation.replace(CANARY_MARK, canary)
    for name in payload.transforms:
        if name != "language":
            text = TRANSFORMS[name](text, canary)
    return text


def reveal(text: str) -> str:
    """Show a reviewer what was hidden: tags decoded, zero-width dropped, homoglyphs undone.

    This is a reading aid, not an exact inverse for arbitrary text: genuine Cyrillic letters in
    `HOMOGLYPHS` are shown as Latin, and joiners inside emoji sequences are dropped. Base64 is
    left as it is.

    Args:
        text: Text as planted, or as a model answered.

    Returns:
        The text with tag characters as ASCII, no zero-width characters and Latin look-alikes.
    """
    return text.translate(_DROP_ZERO_WIDTH).translate(_FROM_TAGS).translate(_TO_LATIN)
