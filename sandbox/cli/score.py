"""`sandbox score`: read a model output you already have, score it, print the verdicts.

The scoring itself is `sandbox.scoring`; this module reads the output and renders the result.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sandbox.cli.render import safe_text
from sandbox.detectors import Verdict
from sandbox.errors import TranscriptError
from sandbox.report.model import VerdictOut
from sandbox.scenarios import Scenario
from sandbox.scoring import parse_transcript, score

STDIN = "-"


def read_output(source: str) -> str:
    """The model output from a file, or from standard input when `source` is `-`.

    Bytes are decoded as UTF-8; undecodable ones become U+FFFD rather than an error.
    """
    if source == STDIN:
        return sys.stdin.buffer.read().decode("utf-8", errors="replace")
    try:
        return Path(source).read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise TranscriptError(
            f"cannot read the output {source}: {exc.strerror or exc}.",
            hint="Check the path, or pass --output - to read standard input.",
        ) from None


def score_output(scenario: Scenario, text: str, source: str, plain: bool) -> list[Verdict]:
    """Every check of `scenario` on `text`: plain text, or a JSON transcript unless `plain`."""
    try:
        transcript = parse_transcript(text, as_json=False if plain else None)
    except TranscriptError as exc:
        raise TranscriptError(
            f"{_describe(source)} is not a valid transcript: {exc.message}",
            hint="Fix the JSON (see `sandbox score --help`), or pass --plain to score it as text.",
        ) from None
    return score(scenario, transcript)


def _describe(source: str) -> str:
    return "standard input" if source == STDIN else f"the output {source}"


def verdict_data(verdict: Verdict) -> dict[str, Any]:
    """A verdict as the plain data `--json` prints: the report's own verdict shape."""
    return VerdictOut.model_validate(verdict).model_dump()


def verdicts_json(scenario: Scenario, verdicts: Sequence[Verdict]) -> str:
    """One JSON document: the scenario, its variant, whether every check passed, the verdicts.

    ASCII-only, so that control characters in hostile evidence arrive escaped.
    """
    document = {
        "scenario": scenario.id,
        "variant": scenario.variant,
        "passed": all(v.passed for v in verdicts),
        "verdicts": [verdict_data(v) for v in verdicts],
    }
    return json.dumps(document, indent=2)


def verdicts_table(scenario: Scenario, verdicts: Sequence[Verdict]) -> Table:
    """One row per check; every cell of model-derived text goes through `safe_text`."""
    table = Table(title=safe_text(f"{scenario.id} ({scenario.variant})"), title_justify="left")
    for name in ("Check", "Kind", "Result", "Label", "Evidence", "Detail"):
        table.add_column(name, overflow="fold")
    for v in verdicts:
        result = Text("PASS", style="green") if v.passed else Text("FAIL", style="bold red")
        table.add_row(
            safe_text(v.check),
            safe_text(v.kind),
            result,
            safe_text(v.label),
            safe_text(v.evidence),
            safe_text(v.detail),
        )
    return table


def summary_line(verdicts: Sequence[Verdict]) -> str:
    """'N of M checks passed.'."""
    passed = sum(1 for v in verdicts if v.passed)
    return f"{passed} of {len(verdicts)} checks passed."


def print_verdicts(
    console: Console, scenario: Scenario, verdicts: Sequence[Verdict], as_json: bool
) -> None:
    """The verdicts as a table and a summary line (people) or one JSON document (machines)."""
    if as_json:
        # Not through rich: no wrapping, no markup, nothing but the document on stdout.
        sys.stdout.write(verdicts_json(scenario, verdicts) + "\n")
        return
    console.print(verdicts_table(scenario, verdicts))
    console.print(summary_line(verdicts), markup=False, highlight=False)
