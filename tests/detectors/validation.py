"""The labelled detector validation set: loading it, scoring it, precision and recall per check.

Each file under tests/data/validation/ is a YAML list of records:

    - id: emb-dicom-study-description-omit-nodule-attacked   # unique
      scenario: dicom-study-description-omit-nodule          # a scenario id under scenarios/
      variant: attacked                                      # or clean
      source: embedded                                       # embedded, hand-written, ...
      output: |                                              # the model's text
        ...
      tool_calls: [{name: send_message, arguments: {...}}]   # optional
      egress: [{t: 0, kind: http, dst: 198.51.100.7, port: 80}]  # optional: what the sink saw
      expect: {canary_absent: pass, findings_reported: fail} # the verdicts a clinician and a
      why: ...                                               # security engineer would give

A check's positive class is "fail": precision is the share of its failures that are right,
recall the share of true failures it catches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from sandbox.carriers import check_buildable
from sandbox.scenarios import Scenario, load_scenarios
from sandbox.scenarios.models import CheckName
from sandbox.scoring import Transcript, parse_transcript, score
from tests.helpers import REPO

DATA = REPO / "tests" / "data" / "validation"


class Record(BaseModel):
    """One labelled output."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    scenario: str
    variant: Literal["attacked", "clean"]
    source: str
    output: str
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    egress: list[dict[str, Any]] | None = None  # None: egress was not observed
    expect: dict[CheckName, Literal["pass", "fail"]] = Field(min_length=1)
    why: str = ""

    def transcript(self) -> Transcript:
        """The record as `sandbox score` would read it from a JSON transcript."""
        data: dict[str, Any] = {"output": self.output, "tool_calls": self.tool_calls}
        if self.egress is not None:
            data["egress"] = self.egress
        return parse_transcript(json.dumps(data), as_json=True)


def load_records(folder: Path = DATA) -> list[Record]:
    """Every record of every file in the folder, in file order."""
    records = []
    for path in sorted(folder.glob("*.yaml")):
        for raw in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            records.append(Record.model_validate(raw))
    return records


@cache
def library() -> dict[str, Scenario]:
    """The scenarios under scenarios/, by id."""
    loaded = load_scenarios([REPO / "scenarios"], check_buildable)
    return {f.scenario.id: f.scenario for f in loaded.files}


def variant_of(record: Record) -> Scenario:
    """The scenario variant the record was produced on."""
    scenario = library()[record.scenario]
    return scenario.clean_twin() if record.variant == "clean" else scenario


@dataclass
class Tally:
    """Confusion counts of one check; positive = the check fails the trial."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def add(self, expected_fail: bool, actual_fail: bool) -> None:
        if expected_fail and actual_fail:
            self.tp += 1
        elif actual_fail:
            self.fp += 1
        elif expected_fail:
            self.fn += 1
        else:
            self.tn += 1


@dataclass(frozen=True)
class Disagreement:
    """A record where a check's verdict differs from the label."""

    record: str
    check: str
    expected: str
    evidence: str


def measure(records: list[Record]) -> tuple[dict[str, Tally], list[Disagreement]]:
    """Score every record and compare each labelled check with its label."""
    tallies: dict[str, Tally] = {}
    disagreements = []
    for record in records:
        verdicts = {v.check: v for v in score(variant_of(record), record.transcript())}
        for check, label in record.expect.items():
            verdict = verdicts[check]
            tallies.setdefault(check, Tally()).add(label == "fail", not verdict.passed)
            if (label == "fail") == verdict.passed:
                note = verdict.evidence or verdict.detail
                disagreements.append(Disagreement(record.id, check, label, note))
    return dict(sorted(tallies.items())), disagreements


def table(tallies: dict[str, Tally]) -> Iterator[str]:
    """The precision/recall table as Markdown lines."""
    yield "| check | labelled | fail | pass | precision | recall |"
    yield "|---|---|---|---|---|---|"
    for check, t in tallies.items():
        total = t.tp + t.fp + t.fn + t.tn
        yield (
            f"| {check} | {total} | {t.tp + t.fn} | {t.fp + t.tn} | {t.precision:.3f} "
            f"| {t.recall:.3f} |"
        )
