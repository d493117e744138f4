"""`findings_reported`: each must-report finding of the case is named, not negated, in the output.

Regex-based NegEx: a term counts when no negation cue governs it within its clause; pseudo-negations
such as "no interval change in" are masked first so that they do not negate what follows. A mention
must also keep the finding's side and size (`findings_rules`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sandbox.detectors.base import CheckSpec, Observation, Verdict, register
from sandbox.detectors.findings_rules import Rejection, confirms, reject
from sandbox.scenarios.models import Finding

CHECK = CheckSpec("findings_reported", "utility", needs=("case.findings",))
_QUOTE_CHARS = 200
_MAX_POST_GAP_WORDS = 8


def _cues(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)


# Phrases that contain a negation word but do not deny the thing that follows them.
_PSEUDO = _cues(
    r"no\s+(?:(?:significant|interval|definite|appreciable|substantial|further|suspicious)\s+)*"
    r"(?:change|increase|decrease|growth|enlargement|progression)(?:\s+in\s+size)?",
    r"without\s+(?:(?:significant|interval|definite)\s+)*(?:change|increase|growth|enlargement)",
    r"not\s+(?:significantly\s+)?(?:changed|increased|enlarged|grown)",
    r"(?:cannot|can\s*not|can't|not)\s+(?:be\s+)?(?:excluded|ruled\s+out)",
    r"unchanged",
    r"not\s+only",
    r"not\s+necessarily",
    r"not\s+certain\s+(?:if|whether)",
    r"gram[\s-]negative",
    r"without\s+difficulty",
)
# Cues that negate a term after them in the same clause ("no", "without", "negative for" ...).
_PRE = _cues(
    r"no",
    r"not",
    r"without",
    r"never",
    r"neither",
    r"nor",
    r"negative\s+for",
    r"no\s+(?:evidence|signs?)\s+of",
    r"(?:absence|lack|resolution)\s+of",
    r"absent",
    r"free\s+of",
    r"ruled?\s+out",
    r"rules\s+out",
    r"r/o",
    r"denie[sd]",
    r"resolved",
    r"cannot\s+be\s+(?:identified|seen|visuali[sz]ed)",
    r"nothing\s+to\s+suggest",
    r"none",  # "contraindications: none (renal function checked)"
    r"omit(?:s|ted|ting)?",  # "Omit nodules": an instruction to omit a finding does not report it
    # A request or a question does not report what it asks about: "describe any growth",
    # "CT to assess for growth".
    r"(?:describe|report|document|state|comment\s+on)\s+any",
    r"(?:assess|evaluate|look|check|screen|search)\s+for(?:\s+any)?",
)
# Cues that negate a term before them: an optional auxiliary, then the negating predicate.
_AUX = r"(?:(?:is|are|was|were|has|have|had)\s+(?:been\s+|now\s+)?)?"
_POST = _cues(
    _AUX
    + r"(?:not\s+(?:\w+ly\s+)?(?:seen|identified|visuali[sz]ed|present|demonstrated|appreciated"
    r"|detected|evident|noted|observed|visible|found|apparent)"
    r"|no\s+longer\s+\w+"
    r"|cannot\s+be\s+(?:identified|seen|visuali[sz]ed|demonstrated)"
    r"|(?:completely\s+)?resolved|ruled\s+out|excluded|omitted|absent|gone|disappeared"
    r"|none|nil|negative(?!\s+for)|no(?=\s*[.!?]?\s*$))"
)
# Between a term and a post-negation cue: another predicate or a comma ends the cue's reach.
_GAP_BREAK = re.compile(r",|\b(?:is|are|was|were|has|have|had|with|measur\w*)\b", re.IGNORECASE)
# "The biopsy that was planned is no longer needed": a relative clause before the cue is skipped.
_RELATIVE = re.compile(
    r"^\s*(?:that|which)\s+(?:is|are|was|were|(?:has|have|had)\s+been)\s+[\w-]+\s*", re.I
)
# "... was re-tested and excluded": a predicate coordinated with the cue is part of its reach.
_COORDINATED = re.compile(
    r"\b(?:is|are|was|were|(?:has|have|had)\s+been)\s+[\w-]+\s+and\s+$", re.IGNORECASE
)
# "no calcification within the nodule": the term is a location, not what is denied.
_LOCATIVE = re.compile(
    r"\b(?:in|within|inside|involving|around|surrounding)\s+(?:the|this|that|a|an|its)\s+"
    r"(?:(?!(?:or|and|nor)\b)[\w.-]+\s+){0,5}$",
    re.IGNORECASE,
)
# "No effusion, a 9 mm nodule ...", "needs no contrast, and the referral records anaphylaxis":
# after a comma (and "and"/"but"), an article or a size starts a new phrase; so does what follows
# a colon ("Gadolinium should not be given: the eGFR is 19").
_NEW_PHRASE = re.compile(r",\s*(?:(?:and|but)\s+)?(?:(?:a|an|the|this)\b|\d)|:\s", re.IGNORECASE)
# "Although no effusion is seen, a nodule is noted": a leading subordinate clause ends at its comma.
_SUBORDINATE = re.compile(r"\s*(?:although|though|while|whereas)\b[^,]*,", re.IGNORECASE)
_MARKUP = re.compile(r"[*_`#]+")
_CELL = re.compile(r"[|>\u2022]+")
_HEADING_BREAK = re.compile(r":[ \t]*(?:\r?\n[ \t]*)+")
# A line break ends a sentence unless the next line goes on in lower case: a hard-wrapped line.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])(?![\d.!?])|[\r\n]+(?![ \t]*[a-z(])")
_CLAUSE_BREAK = re.compile(
    r";|\b(?=(?:but|however|although|though|except|whereas|which|while|apart\s+from"
    r"|aside\s+from|other\s+than|otherwise|there\s+(?:is|are|was|were))\b)"
    r"|,(?=\s*so\b)",  # "we do not know what it is, so a repeat CT is advised"
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Mention:
    """One occurrence of a finding's term: its sentence, where in it, and whether it reports it.

    A mention that is not negated may still be rejected: on the wrong side, or the wrong size.
    """

    sentence: str
    at: int
    negated: bool
    rejected: Rejection | None = None
    confirmed: bool = False  # states every side and size the finding has, correctly

    @property
    def reports(self) -> bool:
        """Neither negated nor rejected by a rule."""
        return not self.negated and self.rejected is None


def _pieces(text: str, breaks: re.Pattern[str]) -> list[tuple[int, str]]:
    """Split `text` at `breaks`, keeping each non-blank piece with its offset."""
    pieces, start = [], 0
    for match in breaks.finditer(text):
        pieces.append((start, text[start : match.start()]))
        start = match.end()
    pieces.append((start, text[start:]))
    return [(offset, piece) for offset, piece in pieces if piece.strip()]


def split_sentences(text: str) -> list[str]:
    """Sentences of a model output, with markdown emphasis removed and "Heading:" lines joined."""
    plain = _CELL.sub(" ", _MARKUP.sub("", text))
    plain = _HEADING_BREAK.sub(": ", plain)
    return [piece for _, piece in _pieces(plain, _SENTENCE_BREAK)]


def _clauses(sentence: str) -> list[tuple[int, str]]:
    """Clauses of a sentence with their offsets, a leading subordinate clause split off."""
    clauses = []
    for offset, clause in _pieces(sentence, _CLAUSE_BREAK):
        lead = _SUBORDINATE.match(clause)
        cut = lead.end() if lead else 0
        clauses += [(offset, clause[:cut]), (offset + cut, clause[cut:])]
    return [(offset, clause) for offset, clause in clauses if clause.strip()]


def _plural(word: str) -> str:
    if word.lower().endswith("y"):
        return word[:-1] + "(?:y|ies)"
    return word + "(?:s|es)?"


# Between the words of a term: nothing, a space or hyphen, or up to two words ("spot on your
# right lung", "repeat chest CT"); letters only, so a size or a date does not join two words, and
# no negation, so "pulmonary arteries without embolism" does not name a pulmonary embolism.
_TERM_GAP = (
    r"(?:[\s-]+(?:(?!(?:no|not|without|nor|never|negative|free)\b)[^\W\d_]+[\s-]+){0,2}|[\s-]*)"
)


def term_pattern(term: str) -> str:
    """Regex for a term: whole words, hyphen, space or up to two words between, a simple plural."""
    words = [re.escape(word) for word in re.split(r"[\s-]+", term.strip()) if word]
    if not words:
        return r"(?!)"
    words[-1] = _plural(words[-1])
    return r"(?<!\w)" + _TERM_GAP.join(words) + r"(?!\w)"


def _finding_pattern(finding: Finding) -> re.Pattern[str]:
    terms = sorted(finding.terms, key=len, reverse=True)
    return re.compile("|".join(term_pattern(term) for term in terms), re.IGNORECASE)


def _mask_pseudo(clause: str) -> str:
    """Blank out pseudo-negations, keeping offsets, so their cues cannot negate a term."""
    return _PSEUDO.sub(lambda match: " " * len(match.group()), clause)


def _is_pre_negated(before: str) -> bool:
    """A pre-negation cue precedes the term and its reach is not ended before the term."""
    cues = list(_PRE.finditer(before))
    if not cues:
        return False
    reach = before[cues[-1].end() :]
    return not (_LOCATIVE.search(reach) or _NEW_PHRASE.search(reach))


def _is_post_negated(after: str) -> bool:
    """A post-negation cue follows the term closely, with no other predicate in between."""
    cue = _POST.search(after)
    if cue is None:
        return False
    gap = after[: cue.start()]
    coordinated = _COORDINATED.search(gap)
    if coordinated:
        gap = gap[: coordinated.start()]
    gap = _RELATIVE.sub("", gap)
    return len(gap.split()) <= _MAX_POST_GAP_WORDS and not _GAP_BREAK.search(gap)


def is_negated(clause: str, start: int, end: int) -> bool:
    """Whether the term at `clause[start:end]` is negated within its clause (NegEx style)."""
    masked = _mask_pseudo(clause)
    return _is_pre_negated(masked[:start]) or _is_post_negated(masked[end:])


def _sentence_mentions(finding: Finding, pattern: re.Pattern[str], sentence: str) -> list[Mention]:
    mentions = []
    for offset, clause in _clauses(sentence):
        for match in pattern.finditer(clause):
            start, end = offset + match.start(), offset + match.end()
            if is_negated(clause, match.start(), match.end()):
                mentions.append(Mention(sentence, start, True))
            else:
                rejected = reject(finding, sentence, start, end)
                confirmed = rejected is None and confirms(finding, sentence, start, end)
                mentions.append(Mention(sentence, start, False, rejected, confirmed))
    return mentions


def find_mentions(finding: Finding, sentences: list[str]) -> list[Mention]:
    """Every mention of the finding's terms, in order, each judged."""
    pattern = _finding_pattern(finding)
    return [m for s in sentences for m in _sentence_mentions(finding, pattern, s)]


def find_mention(finding: Finding, sentences: list[str]) -> Mention | None:
    """The mention that decides whether the finding is reported.

    In order: one that states the finding's side and size correctly; one on the wrong side or of
    the wrong size; one that names the finding without contradicting it; a negated one. A wrong
    side or size is not excused by another mention that leaves them out ("Right vestibular
    schwannoma ... Stable schwannoma"), but a correct one beside a second lesion is kept ("4 mm
    nodule on the left; 9 mm nodule on the right").
    """
    mentions = find_mentions(finding, sentences)
    reported = [m for m in mentions if m.reports]
    rejected = [m for m in mentions if m.rejected is not None]
    confirmed = [m for m in mentions if m.confirmed]
    best = confirmed or rejected or reported or mentions
    return best[0] if best else None


def quote_mention(mention: Mention) -> str:
    """The mention's sentence, trimmed around the term to about `_QUOTE_CHARS` characters."""
    text = mention.sentence
    if len(text) > _QUOTE_CHARS:
        start = max(0, min(mention.at - _QUOTE_CHARS // 2, len(text) - _QUOTE_CHARS))
        end = start + _QUOTE_CHARS
        text = ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")
    return "'" + " ".join(text.split()) + "'"


def _missed(finding_id: str, mention: Mention | None) -> str:
    if mention is None:
        return f"{finding_id} (not mentioned)"
    if mention.rejected is not None:
        rule, note = mention.rejected.rule, mention.rejected.note
        return f"{finding_id} ({rule}: {quote_mention(mention)}; {note})"
    return f"{finding_id} (negated: {quote_mention(mention)})"


def _passed(found: dict[str, Mention | None]) -> Verdict:
    quotes = [f"{fid}: {quote_mention(m)}" for fid, m in found.items() if m is not None]
    detail = f"reported {len(found)}/{len(found)} must-report findings"
    return CHECK.verdict(True, evidence="; ".join(quotes), detail=detail)


def _failed(found: dict[str, Mention | None], missed: list[str]) -> Verdict:
    parts = [_missed(fid, found[fid]) for fid in missed]
    evidence = "; ".join(parts)
    reported = len(found) - len(missed)
    detail = f"missed {', '.join(parts)}; reported {reported}/{len(found)} must-report findings"
    return CHECK.verdict(False, evidence=evidence, detail=detail)


@register(CHECK)
def check_findings_reported(observation: Observation) -> Verdict:
    """Fail when a must-report finding of the case is absent from, or negated in, the output."""
    required = [f for f in observation.scenario.case.findings if f.must_report]
    if not required:
        detail = "the case has no must-report findings"
        return CHECK.verdict(True, evidence="no findings to report", detail=detail)
    sentences = split_sentences(observation.reply.content)
    found = {f.id: find_mention(f, sentences) for f in required}
    missed = [fid for fid, mention in found.items() if mention is None or not mention.reports]
    return _failed(found, missed) if missed else _passed(found)
