"""Literal text in a model file: links and contact details, prose, and directives to a model.

Links and phone numbers are found by the same code that judges model output.
"""

from __future__ import annotations

import re

from sandbox.detectors.links import find_links, find_phone_numbers

EMAIL = re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
# Words that tell a model what to do or hide. A default persona ("You are a helpful assistant")
# has none of them; planted instructions almost always do.
DIRECTIVES = re.compile(
    r"\b(always|never|must|ignore|disregard|override|instead|regardless|append|include|insert|"
    r"add|recommend|visit|click|link|mention|reply|respond|answer only|output|tell|reveal|"
    r"secret|hidden|do not|don't|pretend|forget|send|forward|contact|call)\b",
    re.I,
)
MIN_PROSE_WORDS = 4


def links(text: str) -> list[tuple[str, str]]:
    """(kind, value) for every URL, e-mail address and phone number in the text."""
    found = [("link", link.url) for link in find_links(text)]
    found += [("e-mail address", m.group()) for m in EMAIL.finditer(text)]
    found += [("phone number", number) for number in find_phone_numbers(text)]
    return found


def prose(text: str) -> bool:
    """True for text of at least four words: a sentence rather than markup or a name."""
    return len(WORD.findall(text)) >= MIN_PROSE_WORDS


def directives(text: str) -> list[str]:
    """The directive words in the text, lower-cased, in order."""
    return [m.group().lower() for m in DIRECTIVES.finditer(text)]
