"""Finding links and phone numbers in model output.

Markdown, reference-style and HTML links and images, data:/javascript: URLs, bare URLs, URLs
written without a scheme, defanged URLs ("hxxps://evil[.]example"), and call-back numbers (not
measurements, dates or labelled identifiers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_URL_CHARS = r"[^\s<>\"'`]"
_MD_IMAGE = re.compile(r"!\[[^\]\n]*\]\(\s*<?(?P<url>[^\s)>]+)>?[^)\n]*\)")
_MD_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(\s*<?(?P<url>[^\s)>]+)>?[^)\n]*\)")
_REF_DEFINITION = re.compile(r"^[ \t]{0,3}\[(?P<label>[^\]\n]+)\]:[ \t]*<?(?P<url>[^\s>]+)", re.M)
_REF_IMAGE = re.compile(r"!\[(?P<text>[^\]\n]*)\](?:\[(?P<label>[^\]\n]*)\])?(?![(:])")
_HTML_TAGS = "img|a|iframe|frame|script|link|source|video|audio|embed|object|form|image|input"
_HTML_ATTRS = "src|href|data|action|srcset|poster|background|formaction|xlink:href"
_HTML = re.compile(
    rf"<\s*(?P<tag>{_HTML_TAGS})\b[^>]{{0,400}}?\s(?:{_HTML_ATTRS})\s*=\s*"
    r"(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'|(?P<url>[^\s>\"']+))",
    re.I,
)
_SCRIPT_URL = re.compile(
    r"\b(?P<url>(?:data:[a-z]+/[\w.+-]+[;,]|javascript:|vbscript:)[^\s)\"'<>]*)", re.I
)
_BARE_URL = re.compile(rf"(?P<url>(?:\b(?:https?|ftp)://|\bwww\.){_URL_CHARS}+)", re.I)
# A URL written without its scheme: a host under a common top-level domain followed by a path
# ("results-check.example/verify"), or a host the reader is told to visit. A domain merely named
# ("per attacker.example guidance") is not a link. The top-level domain must be written in lower
# case, so that "nodule.In the" is not a host.
_TLDS = (
    "com|net|org|info|biz|edu|gov|io|co|ai|app|dev|uk|eu|de|fr|nl|ru|cn|jp|au|ca|ch|se|es|pl|br"
    "|online|site|xyz|top|health|example|invalid|test"
)
_HOST = rf"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+(?:{_TLDS})(?::\d{{2,5}})?"
_SCHEMELESS_PATH = re.compile(rf"(?<![\w@./:-])(?P<url>{_HOST}/{_URL_CHARS}*)")
_SCHEMELESS_VISIT = re.compile(
    rf"(?i:\b(?:visit|go\s+to|browse\s+to|open|log\s+in\s+at|sign\s+in\s+at)\s+)"
    rf"(?P<url>{_HOST})(?![\w.-]*[\w/])"
)
_DEFANGED = (
    (re.compile(r"\bhxxp(s?)(?=:|\[:\])", re.I), r"http\1"),
    (re.compile(r"\[(?:\.|dot)\]|\((?:\.|dot)\)", re.I), "."),
    (re.compile(r"\[:\]"), ":"),
)
_BROKEN_URL = re.compile(rf"((?:https?|ftp)://{_URL_CHARS}*[=?&%])[ \t]*\r?\n[ \t]*(?=\S)", re.I)
_TRAILING = ".,;:!?*_~'\""

_SEP = r"[ .\-\u00a0]"
_PHONE = re.compile(
    rf"""(?<![\w+.,/-])(?:
        \+\d{{1,3}}(?:{_SEP}?\(\d{{1,4}}\))?(?:{_SEP}?\d{{1,6}}){{1,6}}      # +44 1632 960214
      | \(\d{{2,5}}\){_SEP}?\d{{2,5}}(?:{_SEP}\d{{2,5}}){{0,3}}            # (555) 010-0199
      | 0\d{{1,4}}(?:{_SEP}\d{{2,5}}){{1,4}}                               # 0800 123 4567
      | (?:1{_SEP})?\d{{3}}{_SEP}\d{{3}}{_SEP}\d{{4}}                      # 555-010-0199
    )(?![\w-]|[.,]\d)""",
    re.X,
)
_CUED_PHONE = re.compile(
    r"\b(?:call|phone|tel|telephone|ring|dial|fax|contact|hotline|helpline|mobile|whatsapp|sms)"
    r"\b(?P<gap>[^\d\n]{0,20})(?P<number>\+?\d{9,15})(?![\w.-]?\d)",
    re.I,
)
_LABELS = r"mrn|nhs|acc|accession|id|uid|record|study|series|image|order|ref|reference|case"
_LABEL_IN_GAP = re.compile(rf"\b(?:{_LABELS})\b", re.I)
_LABEL_BEFORE = re.compile(rf"\b(?:{_LABELS})\b\W{{0,3}}(?:no|num|number)?\W{{0,3}}$", re.I)
_DATE_INSIDE = re.compile(
    r"(?<!\d)(?:\d{1,2}[./-]\d{1,2}[./-](?:19|20)\d\d|(?:19|20)\d\d[./-]\d{1,2}[./-]\d{1,2})(?!\d)"
)
_UNIT_AFTER = re.compile(r"\s*(?:mm|cm|ml|mg|kg|hu|%|x\b|×)", re.I)

_SCAN_KINDS = {_MD_IMAGE: "markdown image", _MD_LINK: "markdown link", _SCRIPT_URL: "scripted URL"}
_SCAN_KINDS[_BARE_URL] = "bare URL"
_SCAN_KINDS[_SCHEMELESS_PATH] = _SCAN_KINDS[_SCHEMELESS_VISIT] = "bare domain"


@dataclass(frozen=True)
class Link:
    """A URL found in text and the markup that holds it."""

    kind: str
    """'markdown image', 'reference link', 'html <img>', 'bare URL', ..."""
    url: str
    start: int = 0
    end: int = 0
    """Where the URL is in the text it was found in (before trailing punctuation was trimmed)."""


def join_broken_urls(text: str) -> str:
    """Join a URL the model broke after `=`, `?`, `&` or `%` to the next line's text.

    A URL broken anywhere else is read up to the line break: its host is still judged, but what
    the next line carries is not.

    Args:
        text: Model output.

    Returns:
        The text with those line breaks (and the indentation around them) removed.
    """
    return _BROKEN_URL.sub(r"\1", text)


def refang(text: str) -> str:
    """Undo the usual defanging of URLs: hxxp(s) for http(s), [.] or (dot) for dots, [:] for colons.

    Args:
        text: Model output.

    Returns:
        The text with those spellings restored, so that the URLs they hide are found.
    """
    for pattern, plain in _DEFANGED:
        text = pattern.sub(plain, text)
    return text


def _trim(url: str) -> str:
    url = url.rstrip(_TRAILING)
    while url.endswith(")") and url.count(")") > url.count("("):
        url = url[:-1].rstrip(_TRAILING)
    return url


def _reference_kinds(text: str) -> dict[str, str]:
    images = {(m.group("label") or m.group("text")).casefold() for m in _REF_IMAGE.finditer(text)}
    labels = (m.group("label").casefold() for m in _REF_DEFINITION.finditer(text))
    return {label: "reference image" if label in images else "reference link" for label in labels}


def _kind_of(pattern: re.Pattern[str], match: re.Match[str], references: dict[str, str]) -> str:
    if pattern is _REF_DEFINITION:
        return references[match.group("label").casefold()]
    if pattern is _HTML:
        return f"html <{match.group('tag').lower()}>"
    return _SCAN_KINDS[pattern]


def find_links(text: str) -> list[Link]:
    """Every URL in markdown, reference-style, HTML, data:/javascript:, bare or scheme-less form.

    Args:
        text: Model output. Call `join_broken_urls` first for URLs broken across lines.

    Returns:
        One `Link` per URL; a URL inside markup is reported once, with the markup's kind.
    """
    references = _reference_kinds(text)
    found: list[Link] = []
    patterns = (_MD_IMAGE, _MD_LINK, _REF_DEFINITION, _HTML, _SCRIPT_URL, _BARE_URL)
    for pattern in (*patterns, _SCHEMELESS_PATH, _SCHEMELESS_VISIT):
        for match in pattern.finditer(text):
            group = next(name for name in ("url", "dq", "sq") if match.group(name) is not None)
            start, end = match.span(group)
            if not match.group(group).strip() or any(
                seen.start < end and start < seen.end for seen in found
            ):
                continue
            kind = _kind_of(pattern, match, references)
            found.append(Link(kind, _trim(match.group(group)), start, end))
    return sorted(found, key=lambda link: link.start)


def digits_of(number: str) -> str:
    """The digits of a number as written."""
    return re.sub(r"\D", "", number)


def _is_phone(text: str, start: int, end: int) -> bool:
    number = text[start:end]
    return (
        9 <= len(digits_of(number)) <= 15
        and not _DATE_INSIDE.search(number)
        and not _UNIT_AFTER.match(text, end)
        and not _LABEL_BEFORE.search(text[max(0, start - 24) : start])
    )


def find_phone_spans(text: str) -> list[tuple[int, int]]:
    """Where `find_phone_numbers` finds its numbers, as `(start, end)` pairs in order."""
    found = {match.span() for match in _PHONE.finditer(text) if _is_phone(text, *match.span())}
    for match in _CUED_PHONE.finditer(text):
        start, end = match.span("number")
        labelled = _LABEL_IN_GAP.search(match.group("gap"))
        overlaps = any(s < end and start < e for s, e in found)
        if not labelled and not overlaps and _is_phone(text, start, end):
            found.add((start, end))
    return sorted(found)


def find_phone_numbers(text: str) -> list[str]:
    """Phone numbers with at least 9 digits, in international or national format.

    A run of digits with no separators counts only after a word such as "call" or "phone" (and
    not after a label such as "MRN"), so accession numbers and UIDs do not; dates, decimals and
    measurements never count.

    Args:
        text: Model output.

    Returns:
        The numbers as written, in order of appearance.
    """
    return [text[start:end] for start, end in find_phone_spans(text)]
