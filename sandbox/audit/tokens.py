"""Tokenizer anomalies: tokens that spell out sentences or links, special tokens that are words.

The same rules serve GGUF vocabularies and the added tokens of a Hugging Face tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from sandbox.audit.findings import Finding, Severity, shorten
from sandbox.audit.text import directives, links, prose

NORMAL, CONTROL, USER_DEFINED = 1, 3, 4  # gguf.TokenType values
ADDED = (CONTROL, USER_DEFINED)
SPACE_MARKS = str.maketrans({"▁": " ", "Ġ": " ", "Ċ": "\n"})
MAY_LINK = re.compile(r"[.@:]|\d{3}")
SHOWN = 5  # findings listed one by one; the rest are counted in one more


def token_findings(
    tokens: Sequence[str],
    types: Sequence[int],
    specials: Mapping[str, int],
    location: str,
    ids: Sequence[int] = (),
) -> list[Finding]:
    """Findings for a vocabulary: `types[i]` is the gguf.TokenType of `tokens[i]`.

    `ids[i]` is the token's id when the tokens are not the whole vocabulary in order.
    """
    found = [
        f
        for i, t in enumerate(tokens)
        if (f := _token(ids[i] if ids else i, t, types[i], location))
    ]
    shown = sorted(found, key=lambda f: -f.severity.rank)[:SHOWN]
    if len(found) > SHOWN:
        worst = shown[-1].severity
        shown.append(
            Finding(
                rule="token-instruction",
                severity=worst,
                message=f"{len(found) - SHOWN} more tokens like these",
                location=location,
            )
        )
    return shown + _specials(tokens, types, specials, location)


def added_token_findings(added: Mapping[int, str], location: str) -> list[Finding]:
    """Findings for a tokenizer's added tokens, by id (all of them count as added)."""
    return token_findings(
        list(added.values()), [CONTROL] * len(added), {}, location, ids=list(added)
    )


def _token(index: int, token: str, kind: int, location: str) -> Finding | None:
    text = token.translate(SPACE_MARKS)
    added = kind in ADDED
    found = links(text) if len(text) >= 6 and MAY_LINK.search(text) else []
    if found:
        severity, what = Severity.HIGH, f"the {found[0][0]} {found[0][1]!r}"
    elif text.count(" ") >= 3 and prose(text):
        severity = Severity.HIGH if added or directives(text) else Severity.MEDIUM
        what = "a sentence"
    else:
        return None
    kind_name = "an added token" if added else "a token"
    return Finding(
        rule="token-instruction",
        severity=severity,
        message=f"{kind_name} (id {index}) decodes to {what}",
        location=location,
        evidence=shorten(text),
    )


def _specials(
    tokens: Sequence[str], types: Sequence[int], specials: Mapping[str, int], location: str
) -> list[Finding]:
    found = []
    for role, index in specials.items():
        if not 0 <= index < len(tokens):
            message = f"the {role} token id {index} is outside the vocabulary ({len(tokens)})"
        elif role in ("eos", "eot", "eom") and types[index] == NORMAL and _is_word(tokens[index]):
            message = f"the {role} token is the ordinary word {tokens[index]!r}"
        else:
            continue
        found.append(
            Finding(
                rule="token-special", severity=Severity.MEDIUM, message=message, location=location
            )
        )
    return found


def _is_word(token: str) -> bool:
    return bool(re.fullmatch(r"\s*[A-Za-z]{2,}\s*", token.translate(SPACE_MARKS)))
