"""Comparisons: each model against its baseline, paired on the trials both ran."""

from __future__ import annotations

import pytest

from sandbox.report.collect import compare
from sandbox.report.model import TrialOut
from tests.report.reports import figures, model, rate, trial, verdict

A, B = "gguf:/models/a.gguf", "gguf:/models/b.gguf"
REF = "+template=reference"


def outcome(
    key: str, scenario: str, variant: str, failed: bool, family: str = "document-injection", **kw
) -> TrialOut:
    checks = [verdict(passed=not failed), verdict("findings_reported", kind="utility")]
    return trial(0, scenario, variant, key, verdicts=checks, family=family, **kw)


def test_a_template_arm_is_compared_with_its_own_model_not_the_first() -> None:
    models = [model(A, position=0), model(B, position=1), model(B + REF, position=2)]

    comparisons = compare(models)

    assert [(c.model_a, c.model_b) for c in comparisons] == [(A, B), (B, B + REF)]


def test_a_template_arm_of_another_run_falls_back_to_the_first_model() -> None:
    models = [model(A, position=0), model(B + REF, run_id="run-2", position=0)]
    models.append(model(B, position=1))

    assert [(c.model_a, c.model_b) for c in compare(models)] == [(A, B + REF), (A, B)]


def test_pairs_decide_what_overlapping_intervals_cannot() -> None:
    """A fails on 6 of 10 attacks, its reference arm on 1, the same one: paired, that is real."""
    base, arm = model(A, position=0), model(A + REF, position=1)
    base = base.model_copy(update={"overall": figures(attack_success=rate(6, 10))})
    arm = arm.model_copy(update={"overall": figures(attack_success=rate(1, 10))})
    trials = [outcome(base.key, f"s{i}", "attacked", failed=i < 6) for i in range(10)]
    trials += [outcome(arm.key, f"s{i}", "attacked", failed=i < 1) for i in range(10)]

    overall = compare([base, arm], trials)[0].groups[0]

    assert overall.attack_success_overlap  # unpaired, 6/10 against 1/10 decides nothing
    paired = overall.attack_success_paired
    assert paired is not None
    assert (paired.n, paired.value) == (10, pytest.approx(-0.5))
    assert paired.significant and paired.high < 0
    assert overall.clean_failure_paired is not None and overall.clean_failure_paired.n == 0


def test_only_trials_with_the_same_scenario_variant_repeat_and_seed_pair() -> None:
    base, arm = model(A, position=0), model(A + REF, position=1)
    trials = [
        outcome(base.key, "s1", "attacked", True),
        outcome(arm.key, "s1", "attacked", False),
        outcome(base.key, "s2", "attacked", True),
        outcome(arm.key, "s2", "attacked", False, seed=99),  # another seed: no pair
        outcome(base.key, "s3", "attacked", True, repeat=1),
        outcome(arm.key, "s3", "attacked", False),  # another repeat: no pair
        outcome(base.key, "s4", "clean", False),
        outcome(arm.key, "s4", "attacked", False),  # another variant: no pair
        outcome(base.key, "s5", "attacked", True),
        trial(0, "s5", "attacked", arm.key, status="error", verdicts=[]),  # no verdict
    ]

    overall = compare([base, arm], trials)[0].groups[0]

    assert overall.attack_success_paired is not None
    assert overall.attack_success_paired.n == 1


def test_each_family_pairs_its_own_trials_and_utility_pairs_clean_twins() -> None:
    base = model(A, position=0, by_family={"dicom": figures(), "pdf": figures()})
    arm = model(A + REF, position=1, by_family={"dicom": figures(), "pdf": figures()})
    trials = []
    for key, dicom_fails in [(base.key, True), (arm.key, False)]:
        trials += [outcome(key, f"d{i}", "attacked", dicom_fails, "dicom") for i in range(3)]
        trials += [outcome(key, f"p{i}", "attacked", True, "pdf") for i in range(2)]
        trials += [outcome(key, f"d{i}", "clean", False, "dicom") for i in range(3)]

    groups = {g.group: g for g in compare([base, arm], trials)[0].groups}

    assert set(groups) == {"overall", "dicom", "pdf"}
    dicom, pdf = groups["dicom"].attack_success_paired, groups["pdf"].attack_success_paired
    overall = groups["overall"].attack_success_paired
    assert dicom is not None and (dicom.n, dicom.value) == (3, pytest.approx(-1.0))
    assert pdf is not None and (pdf.n, pdf.value) == (2, pytest.approx(0.0))
    assert overall is not None and (overall.n, overall.value) == (5, pytest.approx(-0.6))
    utility = groups["overall"].utility_paired
    assert utility is not None and (utility.n, utility.value) == (3, pytest.approx(0.0))
