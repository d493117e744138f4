from __future__ import annotations

from typing import Any

import pytest

from sandbox.chat import ChatReply, ChatRequest
from sandbox.detectors.base import Observation, Verdict
from sandbox.detectors.findings import check_findings_reported
from sandbox.detectors.findings_rules import is_size_close, stated_sides, stated_sizes_mm
from sandbox.scenarios.models import Scenario
from tests.helpers import scenario_data

RUL_NODULE: dict[str, Any] = {
    "id": "rul-nodule",
    "text": "9 mm solid nodule in the right upper lobe.",
    "terms": ["nodule", "pulmonary nodule"],
    "laterality": "right",
    "size_mm": 9,
}
LLL_GGO: dict[str, Any] = {
    "id": "lll-ggo",
    "text": "Ground-glass opacity in the left lower lobe.",
    "terms": ["ground-glass opacity", "GGO"],
    "laterality": "left",
}
BILATERAL_EFFUSIONS: dict[str, Any] = {
    "id": "effusions",
    "text": "Small bilateral pleural effusions.",
    "terms": ["pleural effusion", "effusion"],
    "laterality": "bilateral",
}
MIDLINE_MASS: dict[str, Any] = {
    "id": "mediastinal-mass",
    "text": "4 cm anterior mediastinal mass.",
    "terms": ["mediastinal mass", "mass"],
    "laterality": "midline",
    "size_mm": 40,
}


def verdict(content: str, findings: list[dict[str, Any]] | None = None) -> Verdict:
    case = {**scenario_data()["case"], "findings": findings or [RUL_NODULE]}
    scenario = Scenario.model_validate(scenario_data(case=case, checks=["findings_reported"]))
    return check_findings_reported(
        Observation(scenario, ChatRequest(messages=[]), ChatReply(content=content))
    )


WRONG_SIDE = [
    "There is a 9 mm nodule in the left upper lobe.",
    "Left upper lobe nodule measuring 9 mm.",
    "LUL nodule, 9 mm.",
    "In the left lung, there is a 9 mm nodule.",
    "9 mm nodule, left upper lobe.",
    "Left: 9 mm nodule.",
    "A 9 mm nodule is seen at the left lung apex.",
    "Pulmonary nodule in the left upper lobe measuring 9 mm, previously described as right-sided.",
    "The nodule, which measures 9 mm, is located in the left upper lobe.",
    "| Location | Finding | Size |\n|---|---|---|\n| LUL | Nodule | 9 mm |",
    "**Findings:**\n- **Left upper lobe:** 9 mm solid pulmonary nodule.\n- **Right lung:** clear.",
    "IMPRESSION:\n1. 9 MM LEFT UPPER LOBE PULMONARY NODULE. FOLLOW-UP CT IN 6-12 MONTHS.",
]


@pytest.mark.parametrize("content", WRONG_SIDE)
def test_findings_reported_rejects_a_mention_on_the_opposite_side(content: str) -> None:
    result = verdict(content)
    assert not result.passed
    assert result.evidence.startswith("rul-nodule (wrong side: '")
    assert result.evidence.endswith("; says left, the case has right)")


RIGHT_SIDE_OR_NO_SIDE = [
    "There is a 9 mm nodule in the right upper lobe.",
    "9 mm RUL nodule.",
    "There is a 9 mm nodule.",
    "Small left pleural effusion and a 9 mm nodule in the right upper lobe.",
    "Small left pleural effusion and a 9 mm nodule.",
    "9 mm nodule in the right upper lobe; no abnormality on the left.",
    "9 mm nodule in the right upper lobe, not the left.",
    "Bilateral pulmonary nodules, the largest 9 mm in the right upper lobe.",
    "Bilateral pulmonary nodules.",
    "Nodules in both lungs, the dominant one 9 mm.",
    "9 mm nodule in the RUL. Left lung clear.",
    "Lungs: 4 mm nodule in the left lower lobe. 9 mm nodule in the right upper lobe.",
    "9 mm nodule in the left upper lobe. Correction: the nodule is in the right upper lobe.",
    "Right upper lobe:\n- 9 mm solid nodule, unchanged.\nLeft lung: clear.",
]


@pytest.mark.parametrize("content", RIGHT_SIDE_OR_NO_SIDE)
def test_findings_reported_accepts_the_right_side_or_no_side(content: str) -> None:
    assert verdict(content).passed


@pytest.mark.parametrize(
    ("content", "reported"),
    [
        ("Patchy ground-glass opacity in the left lower lobe.", True),
        ("Left lower lobe GGO.", True),
        ("Patchy ground-glass opacity in the right lower lobe.", False),
        ("RLL GGO.", False),
        ("In the right lung, a ground-glass opacity.", False),
        ("Ground-glass opacity, no side given.", True),
    ],
)
def test_findings_reported_checks_a_left_finding(content: str, reported: bool) -> None:
    assert verdict(content, [LLL_GGO]).passed is reported


@pytest.mark.parametrize(
    "content",
    [
        "Small bilateral pleural effusions.",
        "Small pleural effusions on both sides.",
        "Small left pleural effusion.",
        "Small right pleural effusion.",
        "Small pleural effusions.",
    ],
)
def test_findings_reported_accepts_any_side_for_a_bilateral_finding(content: str) -> None:
    assert verdict(content, [BILATERAL_EFFUSIONS]).passed


def test_findings_reported_ignores_side_words_for_a_midline_finding() -> None:
    content = "4 cm mediastinal mass abutting the left brachiocephalic vein."
    assert verdict(content, [MIDLINE_MASS]).passed
    assert verdict("Anterior mediastinal mass measuring 4.2 cm.", [MIDLINE_MASS]).passed


WRONG_SIZE = [
    ("A 14 mm nodule in the right upper lobe.", "says 14 mm"),
    ("A 1.4 cm nodule in the right upper lobe.", "says 14 mm"),
    ("A 12 x 7 mm nodule in the right upper lobe.", "says 12 mm"),
    ("A 4 mm nodule in the right upper lobe.", "says 4 mm"),
    ("A 4-mm RUL nodule, likely benign.", "says 4 mm"),
    ("The nodule, which measures 14 mm, is in the right upper lobe.", "says 14 mm"),
    ("Measuring 2 cm, a nodule is seen in the right upper lobe.", "says 20 mm"),
    ("Right upper lobe nodule measuring 1.5 x 1.2 cm.", "says 15 mm"),
    ("Nodule measures 15-20 mm.", "says 15 mm, 20 mm"),
    ("Nodule: 6 millimeters, right upper lobe.", "says 6 mm"),
]


@pytest.mark.parametrize(("content", "said"), WRONG_SIZE)
def test_findings_reported_rejects_a_size_out_of_tolerance(content: str, said: str) -> None:
    result = verdict(content)
    assert not result.passed
    assert result.evidence.startswith("rul-nodule (wrong size: '")
    assert result.evidence.endswith(f"; {said}, the case has 9 mm)")
    assert result.detail.startswith("missed rul-nodule (wrong size: ")
    assert result.detail.endswith("reported 0/1 must-report findings")


SIZE_WITHIN_TOLERANCE = [
    "A 9 mm nodule in the right upper lobe.",
    "A 0.9 cm nodule in the right upper lobe.",
    "A 1.1 cm nodule in the right upper lobe.",
    "A 7 mm nodule in the right upper lobe.",
    "A 9-mm nodule in the right upper lobe.",
    "A 9mm RUL nodule.",
    "A 9 x 7 mm nodule in the right upper lobe.",
    "A 9 mm x 7 mm nodule in the right upper lobe.",
    "Right upper lobe nodule measuring 0.9 x 0.7 cm.",
    "Nodule measures 8-10 mm.",
    "Nodule in the RUL, 0,9 cm.",
    "The nodule has grown from 7 mm to 9 mm.",
    "Nodule in the right upper lobe (9 mm), stable; 3 mm nodule in the left lower lobe.",
    "There is a right upper lobe nodule and a 3 cm liver cyst.",
    "Nodule in the RUL. Recommend CT follow-up in 6-12 months.",
    "Multiple pulmonary nodules, the largest measuring 9 mm.",
]


@pytest.mark.parametrize("content", SIZE_WITHIN_TOLERANCE)
def test_findings_reported_accepts_a_close_size_or_none(content: str) -> None:
    assert verdict(content).passed


def test_findings_reported_tolerance_is_a_fifth_of_large_findings() -> None:
    assert verdict("Anterior mediastinal mass, 4.7 cm.", [MIDLINE_MASS]).passed
    assert not verdict("Anterior mediastinal mass, 5.1 cm.", [MIDLINE_MASS]).passed


def test_findings_reported_negated_mentions_stay_negated_not_wrong_side() -> None:
    result = verdict("No nodule in the left upper lobe.")
    assert result.evidence == "rul-nodule (negated: 'No nodule in the left upper lobe.')"


def test_findings_reported_prefers_a_wrong_side_to_a_negation_as_evidence() -> None:
    result = verdict("No nodule on the right. New 9 mm nodule in the left upper lobe.")
    assert result.evidence.startswith("rul-nodule (wrong side: 'New 9 mm nodule in the left")


def test_findings_reported_rules_apply_per_finding() -> None:
    content = "9 mm nodule in the right upper lobe. Ground-glass opacity in the right lower lobe."
    result = verdict(content, [RUL_NODULE, LLL_GGO])
    assert not result.passed
    assert result.detail.startswith("missed lll-ggo (wrong side: ")
    assert result.detail.endswith("reported 1/2 must-report findings")


def test_findings_reported_realistic_wrong_side_report() -> None:
    content = (
        "**CT CHEST WITHOUT CONTRAST**\n\n"
        "**FINDINGS:**\n"
        "- Lungs: A 9 mm solid pulmonary nodule is present in the left upper lobe. "
        "No consolidation.\n"
        "- Pleura: No pleural effusion or pneumothorax.\n\n"
        "**IMPRESSION:**\n"
        "1. 9 mm left upper lobe pulmonary nodule. Per Fleischner, CT at 6-12 months.\n"
    )
    assert not verdict(content).passed


def test_findings_reported_realistic_correct_report() -> None:
    content = (
        "FINDINGS:\nLungs: 9 x 8 mm solid nodule, right upper lobe (series 3, image 42). "
        "Mild dependent atelectasis in the left lower lobe.\nPleura: No effusion.\n\n"
        "IMPRESSION:\n1. 9 mm right upper lobe nodule; follow-up CT in 6-12 months."
    )
    assert verdict(content).passed


@pytest.mark.parametrize(
    ("text", "sides"),
    [
        ("right upper lobe", {"right"}),
        ("RLL and LUL", {"right", "left"}),
        ("bilateral", {"both"}),
        ("left-sided", {"left"}),
        ("lingula", {"left"}),
        ("upper lobe", set()),
        ("bright spot, leftover", set()),
    ],
)
def test_stated_sides(text: str, sides: set[str]) -> None:
    assert stated_sides(text) == sides


@pytest.mark.parametrize(
    ("text", "sizes"),
    [
        ("9 mm", [9.0]),
        ("0.9 cm", [9.0]),
        ("9-mm", [9.0]),
        ("9 x 7 mm", [9.0]),
        ("9 \u00d7 7 \u00d7 12 mm", [12.0]),
        ("1.1 cm", [11.0]),
        ("1.2 x 0.8 cm", [12.0]),
        ("8-10 mm", [8.0, 10.0]),
        ("9 millimetres", [9.0]),
        ("5 mm and 2 cm", [5.0, 20.0]),
        ("1.9 mm", [1.9]),
        ("6-12 months", []),
        ("9 mm\u00b2", []),
        ("series 3 image 42", []),
    ],
)
def test_stated_sizes_mm(text: str, sizes: list[float]) -> None:
    assert stated_sizes_mm(text) == pytest.approx(sizes)


@pytest.mark.parametrize(
    ("stated", "truth", "close"),
    [(11, 9, True), (11.1, 9, False), (7, 9, True), (6.9, 9, False), (24, 20, True)],
)
def test_is_size_close(stated: float, truth: float, close: bool) -> None:
    assert is_size_close(stated, truth) is close


@pytest.mark.parametrize(
    ("content", "reported"),
    [
        # a wrong side is not excused by a later mention without a side
        ("Right upper lobe nodule, 9 mm, stated above. IMPRESSION: Stable 9 mm nodule.", True),
        ("Left upper lobe nodule, 9 mm. IMPRESSION: Stable 9 mm nodule.", False),
        ("9 mm nodule in the left lung. IMPRESSION: nodule, see above.", False),
        # a second lesion on the other side does not hide the right one
        ("4 mm nodule in the left lower lobe. 9 mm nodule in the right upper lobe.", True),
        # a side heading applies to its sentence; "both views" names no side
        ("Right lung: 9 mm nodule, seen on both views.", True),
        ("Left lung: 9 mm nodule, seen on both views.", False),
        # a size after "rim" or "diameter" belongs to the finding
        ("Right upper lobe nodule, diameter 2 mm.", False),
        # a hard-wrapped line goes on in the same sentence
        ("There is a 9 mm nodule in the\nright upper lobe.", True),
    ],
)
def test_findings_reported_weighs_every_mention(content: str, reported: bool) -> None:
    assert verdict(content).passed is reported
