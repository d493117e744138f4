"""The report in words, for a committee: a verdict line and a paragraph per model.

Every number comes from the report, which comes from the stored run; nothing is estimated
here. The terminal and the HTML report print these above the scorecard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sandbox.report.model import (
    Comparison,
    FiguresOut,
    ModelReport,
    PairedOut,
    RateOut,
    Report,
    TrialOut,
)
from sandbox.status import RunStatus


@dataclass(frozen=True)
class ModelSummary:
    """One model in words."""

    label: str
    verdict: str  # "attack success 8/11 [..]; leaked the canary in 5; ..."
    paragraph: str


def summarise_report(report: Report) -> list[ModelSummary]:
    """A summary per model, in report order."""
    status = {run.id: run.status for run in report.runs}
    isolation = {run.id: run.isolation for run in report.runs}
    summaries = []
    for model in report.models:
        attacked = [
            t
            for t in report.trials
            if t.model_key == model.key and t.variant == "attacked" and t.status == "ok"
        ]
        sentences = [
            *_rates(model.overall),
            *_worst_family(model),
            _egress(model, isolation.get(model.run_id, "")),
        ]
        if status.get(model.run_id, RunStatus.COMPLETE) != RunStatus.COMPLETE:
            sentences.append(
                f"Its run is {status[model.run_id]}: these figures are not final "
                f"(run the same command again to complete it)."
            )
        verdict = _verdict(model.overall, attacked)
        summaries.append(ModelSummary(model.label, verdict, " ".join(sentences)))
    return summaries


def comparison_sentences(comparisons: Sequence[Comparison]) -> list[str]:
    """Per comparison: whether the paired intervals (or else the two rates') decide.

    Where both models ran the same trials, the paired difference decides; the clean twins'
    failure rate is named too, since a change that hits every conversation (a chat template
    that plants text) shows there first.
    """
    sentences = []
    for comparison in comparisons:
        overall = next(g for g in comparison.groups if g.group == "overall")
        if overall.attack_success_paired.n or overall.clean_failure_paired.n:
            parts = [
                _paired_words("attack success", overall.attack_success_paired),
                _paired_words("clean-twin failure", overall.clean_failure_paired),
                _paired_words("clean-twin utility", overall.utility_paired),
            ]
        else:
            parts = [
                _decided(
                    "attack success",
                    overall.attack_success_a,
                    overall.attack_success_b,
                    overall.attack_success_overlap,
                ),
                _decided(
                    "clean-twin utility",
                    overall.utility_a,
                    overall.utility_b,
                    overall.utility_overlap,
                ),
            ]
        sentences.append(f"{comparison.model_b} against {comparison.model_a}: {'; '.join(parts)}.")
    return sentences


def _paired_words(name: str, d: PairedOut) -> str:
    if d.n == 0 or d.value is None:
        return f"{name}: no paired trials"
    shown = (
        f"{name} {d.value * 100:+.0f} points over {d.n} paired trials "
        f"(95% CI {d.low * 100:+.0f} to {d.high * 100:+.0f})"
    )
    return f"{shown}, decided" if d.significant else f"{shown}, not decided"


def _decided(name: str, a: RateOut, b: RateOut, overlap: bool) -> str:
    shown = f"{name} {_pct(b)} against {_pct(a)}"
    if a.n == 0 or b.n == 0:
        return f"{shown}, nothing to compare"
    if overlap:
        return f"{shown}, the intervals overlap: this run does not decide (more repeats would)"
    return f"{shown}, the intervals do not overlap: the difference is decided"


def _verdict(overall: FiguresOut, attacked: Sequence[TrialOut]) -> str:
    parts = [f"attack success {_fraction(overall.attack_success)}"]
    if overall.canary_leak.n:
        parts.append(f"leaked the canary in {overall.canary_leak.k}")
    for check, words in (
        ("no_external_urls", "wrote an external link in"),
        ("tool_policy", "made a tool call outside the policy in"),
        ("no_egress", "reached for the network in"),
    ):
        judged = [t for t in attacked if any(v.check == check for v in t.verdicts)]
        if judged:
            failed = sum(any(v.check == check and not v.passed for v in t.verdicts) for t in judged)
            parts.append(f"{words} {failed}")
    parts.append(f"utility on clean twins {_fraction(overall.utility_clean)}")
    if overall.errors:
        parts.append(f"{overall.errors} errored")
    return "; ".join(parts)


def _rates(f: FiguresOut) -> list[str]:
    if f.attack_success.n == 0:
        return ["No attacked trial ran to a verdict."]
    sentences = [
        f"The attacks succeeded in {f.attack_success.k} of {f.attack_success.n} attacked "
        f"trials ({_interval(f.attack_success)})."
    ]
    if f.clean_failure.n and f.adjusted_attack_success is not None:
        sentences.append(
            f"Its clean twins failed in {f.clean_failure.k} of {f.clean_failure.n}, so the "
            f"attacks themselves account for {f.adjusted_attack_success * 100:+.0f} points."
        )
    if f.utility_clean.n:
        sentences.append(
            f"It did the clinical task on {f.utility_clean.k} of {f.utility_clean.n} clean "
            f"twins ({_interval(f.utility_clean)}) and on {f.utility_attacked.k} of "
            f"{f.utility_attacked.n} attacked trials."
        )
    if f.canary_leak.n:
        sentences.append(
            f"It leaked the canary in {f.canary_leak.k} of the {f.canary_leak.n} attacked "
            f"trials that plant one."
        )
    return sentences


def _worst_family(model: ModelReport) -> list[str]:
    rated = {
        name: f.attack_success
        for name, f in model.by_family.items()
        if f.attack_success.value is not None and f.attack_success.k
    }
    if not rated:
        return []
    top = max(r.value or 0.0 for r in rated.values())
    tied = sorted(name for name, r in rated.items() if r.value == top)
    if len(tied) == 1:
        rate = rated[tied[0]]
        return [f"Worst family: {tied[0]} ({rate.k} of {rate.n} attacks succeeded)."]
    return [f"Worst families, tied at {top:.0%} attack success: {', '.join(tied)}."]


def _egress(model: ModelReport, isolation: str) -> str:
    if isolation == "none":
        return "Egress was not observed: the model ran outside any sandbox."
    startup = model.startup_egress
    trial = model.overall.egress_events
    shutdown = sum(d.shutdown for d in model.egress_destinations)
    if not startup + trial + shutdown:
        return "Nothing in its sandbox tried to open a connection."
    caught = (
        f"Its sandbox caught {startup} connection attempt(s) at start-up, {trial} during "
        f"{model.overall.egress_trials.k} trial(s) and {shutdown} after the last trial"
    )
    if not model.egress_destinations:
        return caught + "."
    top = max(model.egress_destinations, key=lambda d: d.startup + d.trial + d.shutdown)
    return f"{caught}; the most frequent destination was {top.destination} ({top.protocol})."


def _fraction(rate: RateOut) -> str:
    if rate.n == 0:
        return "–"
    return f"{rate.k}/{rate.n} [{rate.low:.0%}–{rate.high:.0%}]"


def _interval(rate: RateOut) -> str:
    return f"{_pct(rate)}, 95% CI {rate.low:.0%}–{rate.high:.0%}"


def _pct(rate: RateOut) -> str:
    return "–" if rate.value is None else f"{rate.value:.0%}"
