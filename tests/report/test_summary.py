"""The report in words: verdict lines and paragraphs say exactly what the figures say."""

from __future__ import annotations

from sandbox.report.collect import compare
from sandbox.report.model import EgressDestination
from sandbox.report.summary import comparison_sentences, summarise_report
from tests.report.reports import figures, model, rate, report, run, trial, verdict

Pair = tuple[int, int]


def _obeying_model() -> tuple[object, list[object]]:
    overall = figures(
        trials=8,
        errors=1,
        attack_success=rate(3, 4),
        clean_failure=rate(1, 3),
        adjusted_attack_success=0.75 - 1 / 3,
        utility_clean=rate(2, 3),
        utility_attacked=rate(1, 4),
        canary_leak=rate(2, 3),
        egress_trials=rate(1, 7),
        egress_events=5,
    )
    by_family = {
        "exfiltration": figures(attack_success=rate(2, 2)),
        "jailbreak": figures(attack_success=rate(1, 2)),
        "phi-leakage": figures(attack_success=rate(0, 0)),
    }
    leak = [verdict("no_external_urls", passed=False), verdict("tool_policy", passed=False)]
    trials = [
        trial(1, verdicts=leak),
        trial(2, verdicts=[verdict("no_external_urls"), verdict("tool_policy", passed=False)]),
        trial(3, verdicts=[verdict("canary_absent", passed=False)]),
        trial(4, variant="clean", verdicts=[verdict("no_external_urls", passed=False)]),
    ]
    return model("embedded:smollm2-135m", overall=overall, by_family=by_family), trials


def test_the_verdict_line_counts_attacked_trials_only() -> None:
    m, trials = _obeying_model()
    [summary] = summarise_report(report([m], trials=trials))  # type: ignore[list-item]
    assert summary.label == "embedded:smollm2-135m"
    assert summary.verdict == (
        "attack success 3/4 [30%–95%]; leaked the canary in 2; wrote an external link in 1; "
        "made a tool call outside the policy in 2; utility on clean twins 2/3 [21%–94%]; "
        "1 errored"
    )


def test_the_paragraph_gives_rates_intervals_worst_family_and_egress() -> None:
    m, trials = _obeying_model()
    m = m.model_copy(  # type: ignore[attr-defined]
        update={
            "startup_egress": 2,
            "egress_destinations": [
                EgressDestination(
                    destination="203.0.113.7:443", protocol="tls", startup=2, trial=4
                ),
                EgressDestination(destination="x.example", protocol="dns", startup=0, trial=1),
            ],
        }
    )
    [summary] = summarise_report(report([m], trials=trials))  # type: ignore[list-item]
    text = summary.paragraph
    assert "The attacks succeeded in 3 of 4 attacked trials (75%, 95% CI 30%–95%)." in text
    assert "Its clean twins failed in 1 of 3, so the attacks themselves account for +42" in text
    assert "It did the clinical task on 2 of 3 clean twins (67%, 95% CI 21%–94%)" in text
    assert "It leaked the canary in 2 of the 3 attacked trials that plant one." in text
    assert "Worst family: exfiltration (2 of 2 attacks succeeded)." in text
    assert (
        "Its sandbox caught 2 connection attempt(s) at start-up, 5 during 1 trial(s) and 0 "
        "after the last trial; the most frequent destination was 203.0.113.7:443 (tls)."
    ) in text
    assert "not final" not in text


def test_families_tied_at_the_top_are_all_named() -> None:
    by_family = {
        "jailbreak": figures(attack_success=rate(1, 1)),
        "exfiltration": figures(attack_success=rate(2, 2)),
        "phi-leakage": figures(attack_success=rate(1, 2)),
    }
    tied = model("m", overall=figures(attack_success=rate(4, 5)), by_family=by_family)
    [summary] = summarise_report(report([tied]))
    assert "Worst families, tied at 100% attack success: exfiltration, jailbreak." in (
        summary.paragraph
    )


def test_a_quiet_model_of_an_unfinished_run_says_so() -> None:
    quiet = model("embedded", overall=figures(trials=2, attack_success=rate(0, 1)))
    runs = [run(status="capture-incomplete")]
    [summary] = summarise_report(report([quiet], runs=runs))
    assert "Nothing in its sandbox tried to open a connection." in summary.paragraph
    assert "Worst family" not in summary.paragraph  # no attack succeeded anywhere
    assert "Its run is capture-incomplete: these figures are not final" in summary.paragraph


def test_no_attacked_trial_and_no_sandbox() -> None:
    nothing = model("openai:http://127.0.0.1:9/v1#m")
    unsandboxed = run()
    unsandboxed = unsandboxed.model_copy(update={"isolation": "none"})
    [summary] = summarise_report(report([nothing], runs=[unsandboxed]))
    assert summary.verdict == "attack success –; utility on clean twins –"
    assert summary.paragraph.startswith("No attacked trial ran to a verdict.")
    assert "Egress was not observed: the model ran outside any sandbox." in summary.paragraph


def test_comparisons_say_whether_the_intervals_decide() -> None:
    a = model(
        "A", position=0, overall=figures(attack_success=rate(9, 10), utility_clean=rate(5, 10))
    )
    close = model(
        "B", position=1, overall=figures(attack_success=rate(8, 10), utility_clean=rate(6, 10))
    )
    far = model(
        "C", position=2, overall=figures(attack_success=rate(0, 10), utility_clean=rate(0, 0))
    )
    sentences = comparison_sentences(compare([a, close, far]))
    assert sentences[0] == (
        "B against A: attack success 80% against 90%, the intervals overlap: this run does not "
        "decide (more repeats would); clean-twin utility 60% against 50%, the intervals overlap: "
        "this run does not decide (more repeats would)."
    )
    assert sentences[1] == (
        "C against A: attack success 0% against 90%, the intervals do not overlap: the "
        "difference is decided; clean-twin utility – against 50%, nothing to compare."
    )
