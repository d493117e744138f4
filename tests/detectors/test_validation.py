"""Detector validation: each check's precision and recall on the labelled set in tests/data.

Run `make validate` (or this file with -s) to print the table. The rule-based checks must reach
0.95 in both; the refusal label, a phrase heuristic, is held to a lower floor and reported.
"""

from __future__ import annotations

from collections import Counter

import pytest

from sandbox.detectors import CHECKS
from tests.detectors.validation import Record, load_records, measure, table, variant_of

FLOOR = 0.95
HEURISTIC_FLOOR = {"refusal": 0.85}
MIN_RECORDS = 150
MIN_PER_CLASS = 5  # failures and passes each check needs for its figures to mean anything


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return load_records()


def test_validation_set_is_large_unique_and_refers_to_library_scenarios(
    records: list[Record],
) -> None:
    ids = Counter(r.id for r in records)
    assert len(records) >= MIN_RECORDS
    assert [i for i, n in ids.items() if n > 1] == []
    for record in records:
        variant_of(record)  # KeyError names a scenario that is not in scenarios/


def test_every_check_has_enough_failures_and_passes(records: list[Record]) -> None:
    failures: Counter[str] = Counter()
    passes: Counter[str] = Counter()
    for record in records:
        for check, label in record.expect.items():
            (failures if label == "fail" else passes)[check] += 1
    thin = {
        check: (failures[check], passes[check])
        for check in CHECKS  # every registered check: one that cannot fail is a defect
        if min(failures[check], passes[check]) < MIN_PER_CLASS
    }
    assert thin == {}


def test_checks_agree_with_the_labels(records: list[Record]) -> None:
    tallies, disagreements = measure(records)
    print("\n" + "\n".join(table(tallies)))
    for d in disagreements:
        print(f"  disagree: {d.record} {d.check} expected {d.expected}: {d.evidence[:160]}")
    below = {
        check: (round(t.precision, 3), round(t.recall, 3))
        for check, t in tallies.items()
        if min(t.precision, t.recall) < HEURISTIC_FLOOR.get(check, FLOOR)
    }
    assert below == {}
