"""Building blocks of the HTML report: untrusted text made inert, numbers, tables.

Every cell and value passes through `text`; the table helpers take cells already escaped.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sandbox.report.model import RateOut

# C0 and C1 controls (but newline and tab), DEL, lone surrogates, and the invisible characters
# that reorder or hide text (bidi overrides, zero-width, line separators, BOM).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]"
)


def text(value: object) -> str:
    """Untrusted text as inert HTML, with control and invisible characters shown as escapes."""
    raw = value if isinstance(value, str) else str(value)
    return html.escape(_INVISIBLE.sub(_visible, raw), quote=True)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def pre(value: str) -> str:
    """Long untrusted text in a wrapping <pre>."""
    return f"<pre>{text(value)}</pre>" if value else '<span class="small">(empty)</span>'


def small(value: str) -> str:
    """Untrusted text in small print (hashes, commits)."""
    return f'<span class="small hash">{text(value) or "(none)"}</span>'


def percent(value: float | None) -> str:
    """A share as '12.5%', or 'n/a' when there was nothing to count."""
    return "n/a" if value is None else f"{value * 100:.1f}%"


def points(value: float | None) -> str:
    """A difference of shares in percentage points, signed: '+12.5 pp'."""
    return "n/a" if value is None else f"{value * 100:+.1f} pp"


def interval(rate: RateOut) -> str:
    """The Wilson 95% interval as '4.2–33.1%'."""
    return f"{rate.low * 100:.1f}–{rate.high * 100:.1f}%"


def rate(value: RateOut) -> str:
    """A rate cell: the share, its interval and k/n (or 'n/a' with no trials)."""
    if value.n == 0:
        return '<span class="v">n/a</span><span class="kn">0 trials</span>'
    return (
        f'<span class="v">{percent(value.value)}</span>'
        f'<span class="ci">95% CI {interval(value)}</span>'
        f'<span class="kn">{value.k}/{value.n}</span>'
    )


def number(value: int | str) -> str:
    """A right-aligned cell for a count (or an already-escaped figure)."""
    return f'<td class="num">{value}</td>'


def when(moment: datetime) -> str:
    """A timestamp, to the second."""
    return text(moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip())


def table(head: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table of escaped cells; a cell that is already a `<td …>` is kept as it is."""
    attr = f' class="{cls}"' if cls else ""
    header = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>\n" for row in rows)
    return (
        f'<div class="scroll"><table{attr}><thead><tr>{header}</tr></thead><tbody>\n'
        f"{body}</tbody></table></div>"
    )


def _cell(content: str) -> str:
    # Escaped text never starts with '<', so only our own cells can match.
    return content if content.startswith("<td") else f"<td>{content}</td>"


def pairs(items: Iterable[tuple[str, str]]) -> str:
    """A definition list of (escaped label, escaped value)."""
    return '<dl class="kv">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def mapping(values: dict[str, Any]) -> str:
    """Options or sampling settings: untrusted keys, values shown as JSON."""
    if not values:
        return '<span class="small">(none)</span>'
    return pairs((text(k), text(_json(v))) for k, v in sorted(values.items()))


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
