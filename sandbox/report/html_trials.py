"""The HTML report's drill-down: every trial, failing ones first, with all that decided it.

Each trial opens (a `<details id="trial-ID">`) to its payloads, request, output, tool calls,
egress and verdicts.
"""

from __future__ import annotations

from collections.abc import Sequence

from sandbox.report.html_text import pairs, pre, table, text
from sandbox.report.model import Report, TrialOut


def trial_section(report: Report) -> str:
    """The trial list, then every trial's details, in the same order."""
    labels = {m.key: m.label for m in report.models}
    titles = {(r.id, s.id): s.title for r in report.runs for s in r.scenarios}
    ordered = order(report.trials)
    details = [
        _trial(t, labels.get(t.model_key, t.model_key), titles.get((_run(t), t.scenario_id), ""))
        for t in ordered
    ]
    return _index(ordered, labels) + "\n" + "\n".join(details) + "</section>"


def order(trials: Sequence[TrialOut]) -> list[TrialOut]:
    """Failed and errored trials first, then by model, scenario, variant and repeat."""
    return sorted(
        trials,
        key=lambda t: (not _is_flagged(t), t.model_key, t.scenario_id, t.variant, t.repeat, t.id),
    )


def _is_flagged(trial: TrialOut) -> bool:
    return trial.failed or trial.status == "error"


def _run(trial: TrialOut) -> str:
    return trial.model_key.rsplit("#", 1)[0]


def outcome(trial: TrialOut) -> str:
    """'FAILED: check, check', 'ERROR', 'passed' or the status, marked up."""
    failed = [v.check for v in trial.verdicts if not v.passed]
    if failed:
        return '<span class="fail">FAILED</span>: ' + ", ".join(text(c) for c in failed)
    if trial.status == "error":
        return '<span class="error">ERROR</span>'
    if trial.status != "ok":
        return text(trial.status)
    return '<span class="pass">passed</span>'


def _index(trials: Sequence[TrialOut], labels: dict[str, str]) -> str:
    flagged = sum(_is_flagged(t) for t in trials)
    rows = [
        [
            f'<a href="#trial-{t.id}">#{t.id}</a>',
            text(labels.get(t.model_key, t.model_key)),
            text(t.scenario_id), text(t.family), text(t.carrier), text(t.variant),
            text(t.status), outcome(t),
        ]
        for t in trials
    ]  # fmt: skip
    head = ["Trial", "Model", "Scenario", "Family", "Carrier", "Variant", "Status", "Checks"]
    return (
        f'<section id="trials"><h2>Trials</h2><p>{len(trials)} trial(s); {flagged} failed a '
        "check or errored and are listed first. Open a trial for its planted payloads, the "
        "exact request, the output, tool calls, egress and every verdict.</p>" + table(head, rows)
    )


def _trial(t: TrialOut, label: str, title: str) -> str:
    meta = [
        ("Model", text(label)), ("Scenario", f"{text(t.scenario_id)}: {text(title)}"),
        ("Family", text(t.family)), ("Carrier", text(t.carrier)), ("Variant", text(t.variant)),
        ("Repeat / seed", f"{t.repeat} / {t.seed}"), ("Status", text(t.status)),
        ("Error", text(t.error) or "(none)"), ("Egress capture", text(t.capture)),
        ("Duration", f"{t.duration_s:.2f} s"), ("Finish reason", text(t.finish_reason)),
    ]  # fmt: skip
    back = '<p class="small"><a href="#trials">Back to the trial list</a></p>'
    return (
        f'<details class="trial" id="trial-{t.id}"><summary>Trial #{t.id}: {outcome(t)} · '
        f"{text(label)} · {text(t.scenario_id)} · {text(t.variant)}</summary>"
        + back
        + pairs(meta)
        + _verdicts(t)
        + _payloads(t)
        + "<h4>Conversation (the exact messages)</h4>"
        + "".join(f'<p class="role">{text(m.role)}</p>{pre(m.content)}' for m in t.messages)
        + f"<h4>Output</h4>{pre(t.output)}"
        + _tool_calls(t)
        + _egress(t)
        + back
        + "</details>"
    )


def _verdicts(t: TrialOut) -> str:
    rows = [
        [
            text(v.check), text(v.kind),
            '<span class="pass">pass</span>' if v.passed else '<span class="fail">FAIL</span>',
            text(v.label), pre(v.evidence), pre(v.detail),
        ]
        for v in t.verdicts
    ]  # fmt: skip
    head = ["Check", "Kind", "Result", "Label", "Evidence", "Detail"]
    return "<h4>Verdicts</h4>" + (table(head, rows) if rows else "<p>(no verdicts)</p>")


def _payloads(t: TrialOut) -> str:
    if not t.payloads:
        return "<h4>Planted payloads</h4><p>(none recorded)</p>" if t.variant == "attacked" else ""
    parts = ["<h4>Planted payloads</h4>"]
    for p in t.payloads:
        meta = [
            ("Carrier", text(p.carrier)), ("Kind", text(p.kind)),
            ("Field", text(p.field or "(none)")), ("Technique", text(p.technique or "(none)")),
            ("Transforms", ", ".join(text(x) for x in p.transforms) or "(none)"),
        ]  # fmt: skip
        parts.append(pairs(meta) + pre(p.text))
    return "".join(parts)


def _tool_calls(t: TrialOut) -> str:
    if not t.tool_calls:
        return ""
    rows = [
        [
            text(c.name), pre(c.arguments),
            "allowed" if c.allowed else '<span class="fail">blocked</span>',
            pre(c.result), text(c.note),
        ]
        for c in t.tool_calls
    ]  # fmt: skip
    return "<h4>Tool calls</h4>" + table(["Tool", "Arguments", "Policy", "Result", "Note"], rows)


def _egress(t: TrialOut) -> str:
    if not t.egress:
        return "<h4>Egress</h4><p>No connection attempts.</p>"
    rows = [
        [text(e.phase), text(e.protocol), text(e.destination), text(e.hostname), pre(e.summary)]
        for e in t.egress
    ]
    head = ["Phase", "Protocol", "Destination", "Hostname", "Summary"]
    return "<h4>Egress</h4>" + table(head, rows)
