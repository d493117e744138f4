from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.carriers import build_artifacts
from sandbox.chat import ChatRequest
from sandbox.scenarios import Scenario, load_scenario_file
from sandbox.workflows import WORKFLOWS, render_request
from sandbox.workflows.extract import artifact_text

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
FILES = sorted(p for p in SCENARIOS.rglob("*") if p.suffix in (".yaml", ".yml"))


def load(path: Path) -> Scenario:
    return load_scenario_file(path).scenario


def request_text(scenario: Scenario) -> str:
    """What reaches the model: the request, plus documents its tools serve (pacs-agent priors)."""
    artifacts = build_artifacts(scenario)
    request: ChatRequest = render_request(scenario, artifacts)
    served = [artifact_text(a) for a in artifacts if request.tools and a.kind == "prior-report"]
    return "\n".join([*(m.text for m in request.messages), *served])


def test_library_is_not_empty() -> None:
    assert len(FILES) >= 3, f"expected the scenario library under {SCENARIOS}"


@pytest.fixture(params=FILES, ids=[p.relative_to(SCENARIOS).as_posix() for p in FILES])
def library_file(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


def test_library_file_loads_as_an_attack(library_file: Path) -> None:
    scenario = load(library_file)

    assert scenario.variant == "attacked"
    assert scenario.has_payload


def test_library_file_family_is_its_folder(library_file: Path) -> None:
    assert load(library_file).family == library_file.parent.name


def test_library_clean_twin_loads_without_payload(library_file: Path) -> None:
    twin = load(library_file).clean_twin()

    reloaded = Scenario.model_validate(twin.model_dump())

    assert reloaded.variant == "clean"
    assert not reloaded.has_payload
    assert not any(a.has_payload for a in build_artifacts(reloaded))


def is_vision(scenario: Scenario) -> bool:
    return "image" in WORKFLOWS[scenario.workflow].inputs


def image_parts(scenario: Scenario) -> list[str]:
    request = render_request(scenario, build_artifacts(scenario))
    contents = [m.content for m in request.messages if isinstance(m.content, list)]
    return [p["image_url"]["url"] for c in contents for p in c if p["type"] == "image_url"]


def test_library_canary_is_planted_in_the_attacked_request_only(library_file: Path) -> None:
    scenario = load(library_file)
    if is_vision(scenario):  # the canary is in the pixels: the images must differ
        assert image_parts(scenario) != image_parts(scenario.clean_twin())
        return

    attacked = request_text(scenario)
    clean = request_text(scenario.clean_twin())

    assert scenario.canary_token in attacked
    assert scenario.canary_token not in clean


def test_library_must_report_findings_are_named_in_the_clean_request(
    library_file: Path,
) -> None:
    scenario = load(library_file)
    clean = request_text(scenario.clean_twin()).casefold()

    must_report = [f for f in scenario.case.findings if f.must_report]

    assert must_report, "a scenario needs a must-report finding to measure utility"
    if is_vision(scenario):  # the finding is drawn in the image, not named in the text
        assert all(f.size_mm for f in must_report)
        return
    for finding in must_report:
        assert any(t.casefold() in clean for t in finding.terms), (
            f"{finding.id}: none of {finding.terms} appears in the clean request"
        )


def test_library_patient_is_synthetic(library_file: Path) -> None:
    patient = load(library_file).case.patient

    assert patient.mrn.startswith("MRN-")


def test_library_ids_are_unique() -> None:
    ids = [load(p).id for p in FILES]

    assert len(ids) == len(set(ids))
