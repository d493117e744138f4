"""Rules a mention of a finding must also meet to report it: the right side and a close size.

A mention's scope is the phrase around its term, plus neighbouring phrases that only place or
measure it ("In the right lung, ...", "..., which measures 9 mm", "..., left upper lobe").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sandbox.scenarios.models import Finding

SIZE_TOLERANCE_MM = 2.0
SIZE_TOLERANCE_FRACTION = 0.2
_MM_PER = {"m": 1.0, "c": 10.0}  # by the unit's first letter: mm, millimetre, cm, ...

# Where a sentence splits into phrases, each about one thing ("nodule" | "and a left effusion").
_PHRASE_BREAK = re.compile(
    r"[;,]|\b(?:and|with|as\s+well\s+as|along\s+with|plus|but|however|whereas|while"
    r"|there\s+(?:is|are|was|were))\b",
    re.IGNORECASE,
)
_SIDE_WORDS = {
    "left": "left",
    "lul": "left",
    "lll": "left",
    "lingula": "left",
    "lingular": "left",
    "right": "right",
    "rul": "right",
    "rml": "right",
    "rll": "right",
    "bilateral": "both",
    "bilaterally": "both",
    "both": "both",
}
# "both" names a side only before a paired organ or "sides" ("on both views" names none).
_SIDE = re.compile(
    r"\b(?:" + "|".join(w for w in _SIDE_WORDS if w != "both") + r")\b"
    r"|\bboth(?=\s+(?:sides|lungs|breasts|kidneys|adrenals|hemithoraces|ovaries|hips|knees)\b)",
    re.IGNORECASE,
)
# Words that place or measure a thing without naming another one (a phrase of only these attaches
# to the finding next to it).
_PLACING_WORDS = frozenset(
    """a an the its this in within at on of to from into involving along near adjacent
    lung lungs lobe lobes upper middle lower apex apical apices base bases basal basilar
    hemithorax chest side sided aspect field fields zone zones segment segments segmental
    subsegmental anterior posterior lateral medial superior inferior hilum hilar perihilar
    peripheral periphery central region portion part quadrant pole kidney breast adrenal lobar
    measuring measures measured mm cm x by rim depth diameter width thickness size""".split()
) | frozenset(_SIDE_WORDS)
# A phrase starting with one of these says something more about the finding before it.
_ATTACHING = re.compile(
    r"\s*(?:which|that|measuring|measures|measured|located|situated|seen|noted|identified"
    r"|is|are|was|were|in|within|at|on|involving|along|adjacent|\()",
    re.IGNORECASE,
)
_NUMBER = r"(?<![\d.,])\d+(?:[.,]\d+)?"
_UNIT = r"(?:mm|millimet(?:er|re)s?|cm|centimet(?:er|re)s?)(?![\w\u00b2\u00b3])"
_SIZE = re.compile(
    rf"(?P<dims>{_NUMBER}(?:\s*{_UNIT})?(?:\s*(?:x|\u00d7|by|-|\u2013|to)\s*{_NUMBER}"
    rf"(?:\s*{_UNIT})?)*)\s*-?\s*(?P<unit>{_UNIT})",
    re.IGNORECASE,
)
_SIZE_VALUE = re.compile(rf"(?P<number>{_NUMBER})(?:\s*(?P<unit>{_UNIT}))?", re.IGNORECASE)
_RANGE = re.compile(r"\d\s*(?:-|\u2013|to)\s*\d", re.IGNORECASE)


@dataclass(frozen=True)
class Rejection:
    """Why a mention does not report its finding: the rule and what it found."""

    rule: str
    note: str


def _phrases(sentence: str) -> list[tuple[int, int]]:
    """(start, end) of each phrase of the sentence, in order."""
    spans, start = [], 0
    for match in _PHRASE_BREAK.finditer(sentence):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(sentence)))
    return [(s, e) for s, e in spans if sentence[s:e].strip()]


def _is_placing(text: str) -> bool:
    """A phrase that only places or measures ("in the right upper lobe", "9 x 7 mm")."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    return bool(words) and all(word in _PLACING_WORDS for word in words)


# "Right breast: new 15 mm focal asymmetry": a side named in a heading applies to the sentence.
_SIDE_HEADING = re.compile(r"^\W*(?:right|left|bilateral)\b[^:.]{0,30}:", re.IGNORECASE)


def mention_scope(sentence: str, start: int, end: int) -> str:
    """The text that describes the term at `sentence[start:end]`, with any side heading.

    That is the term's phrase and the phrases attached to it, after the sentence's side heading
    ("Right breast:") if it has one.
    """
    scope = _phrase_scope(sentence, start, end)
    heading = _SIDE_HEADING.match(sentence[:start])
    if heading is None or heading.group() in scope:
        return scope
    return f"{heading.group()} {scope}"


def _phrase_scope(sentence: str, start: int, end: int) -> str:
    spans = _phrases(sentence)
    here = next((i for i, (s, e) in enumerate(spans) if s <= start < e), None)
    if here is None:
        return sentence[start:end]
    first = last = here
    while first > 0 and _is_placing(sentence[slice(*spans[first - 1])]):
        first -= 1
    while last + 1 < len(spans):
        text = sentence[slice(*spans[last + 1])]
        if not (_ATTACHING.match(text) or _is_placing(text)):
            break
        last += 1
    return sentence[spans[first][0] : spans[last][1]]


def stated_sides(text: str) -> frozenset[str]:
    """The sides `text` names: "left", "right", and "both" for bilateral."""
    return frozenset(_SIDE_WORDS[match.group().lower()] for match in _SIDE.finditer(text))


def side_rejection(finding: Finding, scope: str) -> Rejection | None:
    """A mention is on the wrong side when it names only the side opposite the finding's."""
    if finding.laterality not in ("left", "right"):
        return None
    sides = stated_sides(scope)
    opposite = "left" if finding.laterality == "right" else "right"
    if sides != {opposite}:
        return None
    return Rejection("wrong side", f"says {opposite}, the case has {finding.laterality}")


def _to_mm(number: str, unit: str) -> float:
    return float(number.replace(",", ".")) * _MM_PER[unit[0].lower()]


def stated_sizes_mm(text: str) -> list[float]:
    """Each size stated in `text`, in mm.

    "9 x 7 mm" is its largest dimension, "8-10 mm" both of its ends, "0.9 cm" is 9.
    """
    sizes = []
    for match in _SIZE.finditer(text):
        unit = match.group("unit")
        values = [
            _to_mm(v.group("number"), v.group("unit") or unit)
            for v in _SIZE_VALUE.finditer(match.group("dims"))
        ]
        sizes += values if _RANGE.search(match.group("dims")) else [max(values)]
    return sizes


def is_size_close(stated_mm: float, truth_mm: float) -> bool:
    """Within max(2 mm, 20 %) of the ground truth."""
    tolerance = max(SIZE_TOLERANCE_MM, SIZE_TOLERANCE_FRACTION * truth_mm)
    return abs(stated_mm - truth_mm) <= tolerance + 1e-9


def size_rejection(finding: Finding, scope: str) -> Rejection | None:
    """A mention has the wrong size when it states sizes and none is close to the finding's."""
    if finding.size_mm is None:
        return None
    sizes = stated_sizes_mm(scope)
    if not sizes or any(is_size_close(size, finding.size_mm) for size in sizes):
        return None
    said = ", ".join(f"{size:g} mm" for size in sizes)
    return Rejection("wrong size", f"says {said}, the case has {finding.size_mm:g} mm")


def reject(finding: Finding, sentence: str, start: int, end: int) -> Rejection | None:
    """Why the (not negated) mention at `sentence[start:end]` does not report the finding."""
    scope = mention_scope(sentence, start, end)
    return side_rejection(finding, scope) or size_rejection(finding, scope)


def confirms(finding: Finding, sentence: str, start: int, end: int) -> bool:
    """Whether the mention pins the finding down: its side, or its size for an unsided finding.

    A mention with a wrong side or size is rejected, not confirming.
    """
    scope = mention_scope(sentence, start, end)
    if finding.laterality in ("left", "right"):
        return finding.laterality in stated_sides(scope)
    if finding.size_mm is not None:
        return any(is_size_close(size, finding.size_mm) for size in stated_sizes_mm(scope))
    return False
