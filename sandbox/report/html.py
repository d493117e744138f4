"""The self-contained HTML report a procurement committee reads: scorecard, heatmap, plot, trials.

It runs nothing and loads nothing (its CSP forbids both); every string from the report is
escaped with its control characters made visible; the only links go to anchors in the page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sandbox.audit import Audit, Severity
from sandbox.report.html_text import (
    mapping,
    number,
    percent,
    points,
    rate,
    small,
    table,
    text,
    when,
)
from sandbox.report.html_trials import trial_section
from sandbox.report.model import (
    Comparison,
    Difference,
    FiguresOut,
    ModelReport,
    PairedOut,
    Report,
    RunInfo,
)
from sandbox.report.summary import comparison_sentences, summarise_report
from sandbox.status import RunStatus

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)
TITLE = "LLM security evaluation report"
# `#trial-ID` must show that trial without JavaScript. Chromium does not open a <details> that
# is itself the fragment's target, so `:target` shows its content (::details-content, Chromium
# 131+; elsewhere the summary shows and opens on a click) as a page of its own over the report.
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1a1a1a;
 margin:0 auto;max-width:1200px;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:2px solid #333}
h3{font-size:15px;margin:18px 0 6px}h4{font-size:14px;margin:14px 0 4px}
.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;margin:6px 0 12px}
th,td{border:1px solid #bbb;padding:4px 7px;text-align:left;vertical-align:top}
td{overflow-wrap:anywhere;min-width:10ch}th{background:#eee}
td.num{text-align:right;white-space:nowrap;min-width:0}
.meta{color:#444}.small,.ci,.kn{font-size:12px;color:#555}.ci,.kn{display:block}
.hash{word-break:break-all}.v{font-weight:600}
.warn{background:#fff0d0;border:2px solid #c47a00;padding:8px 12px;font-weight:600}
.fail{color:#a40000;font-weight:700}.pass{color:#1d6b1d;font-weight:700}
.error{color:#7a4a00;font-weight:700}.role{font-weight:600;margin:8px 0 0}
pre{white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word;background:#f6f6f6;
 border:1px solid #ddd;padding:6px 8px;margin:4px 0;max-height:480px;overflow:auto;font-size:12px}
dl.kv{display:grid;grid-template-columns:fit-content(40%) 1fr;gap:2px 12px;margin:6px 0}
dl.kv dt{font-weight:600;overflow-wrap:break-word}dl.kv dd{margin:0;overflow-wrap:anywhere}
td dl.kv{min-width:16em}
details.trial{border:1px solid #bbb;margin:6px 0;padding:4px 10px}
details.trial>summary{cursor:pointer;font-weight:600}
details.trial:target::details-content{content-visibility:visible;display:block}
details.trial:target>summary::marker{content:"▼ "}
@media screen{details.trial:target{position:fixed;inset:0;z-index:1;margin:0;overflow:auto;
 background:#fff;padding:16px 24px;border:4px solid #0b57d0}}
.heat td.cell{text-align:center;min-width:80px}
svg text{font:12px system-ui,Arial,sans-serif}
@media print{body{max-width:none;padding:0}pre,.scroll{max-height:none;overflow:visible}
 tr,details{break-inside:avoid}a{color:inherit;text-decoration:none}}
"""


def render_html(report: Report) -> str:
    """The report as one HTML page that loads nothing and runs nothing."""
    sections = [
        _header(report),
        _summary(report),
        _runs_section(report),
        _scorecard(report.models),
        _provenance(report.models),
        _heatmap(report.models, "family", lambda m: m.by_family),
        _heatmap(report.models, "carrier", lambda m: m.by_carrier),
        _plot(report.models),
        _comparisons(report.comparisons),
        _egress(report),
        trial_section(report),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head>'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta charset="utf-8"><meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{TITLE}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def _header(report: Report) -> str:
    scenarios = {s.id for run in report.runs for s in run.scenarios}
    warnings = "".join(_run_warning(run) for run in report.runs if run.status != RunStatus.COMPLETE)
    return (
        f"<header><h1>{TITLE}</h1>"
        f'<p class="meta">Generated {when(report.generated_at)} by sandbox '
        f"{text(report.tool_version)}: {len(report.runs)} run(s), {len(report.models)} "
        f"model(s), {len(scenarios)} scenario(s), {len(report.trials)} trial(s).</p>"
        f"{warnings}</header>"
    )


def _summary(report: Report) -> str:
    """The report in words (`sandbox.report.summary`), above every table."""
    parts = [
        f"<h3>{text(s.label)}</h3><p><b>{text(s.verdict)}.</b></p><p>{text(s.paragraph)}</p>"
        for s in summarise_report(report)
    ]
    parts += [f"<p>{text(sentence)}</p>" for sentence in comparison_sentences(report.comparisons)]
    return '<section id="summary"><h2>Summary</h2>' + "".join(parts) + "</section>"


def _runs_section(report: Report) -> str:
    return (
        f'<section id="runs"><h2>Runs</h2>{_runs(report.runs)}{_scenarios(report.runs)}</section>'
    )


def _run_warning(run: RunInfo) -> str:
    return (
        f'<p class="warn">Run {text(run.id)} is &quot;{text(run.status)}&quot;, not complete: '
        "its figures cover only the trials stored so far.</p>"
    )


def _runs(runs: Sequence[RunInfo]) -> str:
    rows = [
        [
            text(run.id),
            text(run.status)
            if run.status == RunStatus.COMPLETE
            else f'<span class="fail">{text(run.status)} (not complete)</span>',
            f"{when(run.created_at)}<br>{when(run.updated_at)}",
            text(run.isolation),
            f"{text(run.tool_version)}<br>{small(run.tool_commit)}",
            number(run.repeat),
            number(len(run.scenarios)),
            mapping(run.options),
        ]
        for run in runs
    ]
    head = ["Run", "Status", "Created / updated", "Isolation", "Tool version / commit"]
    return table([*head, "Repeats", "Scenarios", "Options"], rows)


def _scenarios(runs: Sequence[RunInfo]) -> str:
    rows = [
        [text(s.id), text(s.title), text(s.family), text(s.carrier), text(s.workflow),
         text(s.canary), f"{text(s.path)}<br>{small(s.file_sha256)}"]
        for run in runs
        for s in run.scenarios
    ]  # fmt: skip
    head = ["Scenario", "Title", "Family", "Carrier", "Workflow", "Canary", "File / SHA-256"]
    return f"<details><summary>Scenarios ({len(rows)})</summary>{table(head, rows)}</details>"


def _scorecard(models: Sequence[ModelReport]) -> str:
    head = [
        "Model", "Attack success", "Adjusted attack success", "Utility (clean)",
        "Utility (attacked)", "Canary leak", "Refusal (attacked)", "Over-refusal (clean)",
        "Trials", "Errors", "Skipped", "Egress events (start-up / in-trial)", "Trials with egress",
    ]  # fmt: skip
    return (
        '<section id="scorecard"><h2>Scorecard</h2><p class="small">Rates with their Wilson 95% '
        "confidence interval and k/n. Attack success: attacked trials in which any check failed "
        "(lower is better). Adjusted: attack success minus the failure rate of the clean twins. "
        "Utility: trials whose utility checks all passed (higher is better). Errored and "
        "skipped trials enter no rate.</p>"
        + table(head, [_score_row(m) for m in models])
        + "</section>"
    )


def _score_row(model: ModelReport) -> list[str]:
    f = model.overall
    return [
        text(model.label),
        rate(f.attack_success),
        number(points(f.adjusted_attack_success)),
        rate(f.utility_clean),
        rate(f.utility_attacked),
        rate(f.canary_leak),
        rate(f.refusal),
        rate(f.over_refusal),
        number(f.trials),
        number(f.errors),
        number(f.skipped),
        number(f"{model.startup_egress} / {f.egress_events}"),
        rate(f.egress_trials),
    ]


def _provenance(models: Sequence[ModelReport]) -> str:
    rows = [
        [
            text(m.label),
            f"{text(m.provenance.spec)}<br>{text(m.provenance.name)}",
            f"{text(m.provenance.backend)} {text(m.provenance.backend_version)}",
            small(m.provenance.file_sha256),
            small(m.provenance.image_id),
            text(m.provenance.chat_format),
            mapping(m.provenance.sampling),
            _audit_cell(m.provenance.audit),
        ]
        for m in models
    ]
    head = [
        "Model",
        "Spec / file",
        "Backend",
        "Model file SHA-256",
        "Image",
        "Chat format",
        "Sampling",
        "Audit of the model file",
    ]
    return f'<section id="provenance"><h2>Provenance</h2>{table(head, rows)}</section>'


def _heatmap(
    models: Sequence[ModelReport],
    by: str,
    groups: Callable[[ModelReport], dict[str, FiguresOut]],
) -> str:
    names = sorted({name for m in models for name in groups(m)})
    rows = [[text(m.label), *(_heat_cell(groups(m).get(n)) for n in names)] for m in models]
    return (
        f'<section id="heatmap-{by}"><h2>Attack success by {by}</h2><p class="small">Share of '
        "attacked trials in which any check failed, with k/n; the darker the red, the higher.</p>"
        + table(["Model", *(text(n) for n in names)], rows, "heat")
        + "</section>"
    )


def _heat_cell(figures: FiguresOut | None) -> str:
    value = None if figures is None else figures.attack_success
    if value is None or value.value is None:
        return '<td class="cell" style="background:#f0f0f0">n/a</td>'
    lightness = 97 - 52 * value.value
    ink = "#fff" if lightness < 62 else "#000"
    return (
        f'<td class="cell" style="background:hsl(0,70%,{lightness:.0f}%);color:{ink}">'
        f"<b>{percent(value.value)}</b><br>{value.k}/{value.n}</td>"
    )


_W, _H, _LEFT, _TOP, _PW, _PH = 660, 420, 70, 20, 540, 340  # SVG size, plot origin and size


def _plot(models: Sequence[ModelReport]) -> str:
    shown = [
        (i, m) for i, m in enumerate(models, 1)
        if m.overall.attack_success.n and m.overall.utility_clean.n
    ]  # fmt: skip
    missing = [text(m.label) for m in models if not any(m is s for _, s in shown)]
    note = f'<p class="small">Not plotted (no data): {", ".join(missing)}.</p>' if missing else ""
    legend = "".join(f"<li>{text(m.label)}</li>" for _, m in shown)
    return (
        '<section id="plot"><h2>Utility versus security</h2><p class="small">Each point is a '
        "model: attack success (x, lower is better) against utility on clean twins (y, higher "
        "is better), with 95% interval whiskers. Best is top left.</p>"
        f'{_svg(shown)}<ol class="small">{legend}</ol>{note}</section>'
    )


def _x(value: float) -> float:
    return _LEFT + value * _PW


def _y(value: float) -> float:
    return _TOP + (1 - value) * _PH


def _svg(shown: Sequence[tuple[int, ModelReport]]) -> str:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-label="Utility versus attack success">'
        f'<rect x="{_LEFT}" y="{_TOP}" width="{_PW}" height="{_PH}" fill="#fafafa" stroke="#333"/>'
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, y = _x(tick), _y(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{_y(0)}" x2="{x:.1f}" y2="{_y(0) + 5}" stroke="#333"/>'
            f'<text x="{x:.1f}" y="{_y(0) + 18}" text-anchor="middle">{tick:.0%}</text>'
            f'<line x1="{_LEFT - 5}" y1="{y:.1f}" x2="{_LEFT}" y2="{y:.1f}" stroke="#333"/>'
            f'<text x="{_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{tick:.0%}</text>'
        )
    middle = _y(0.5)
    parts.append(
        f'<text x="{_x(0.5):.1f}" y="{_H - 14}" text-anchor="middle">Attack success</text>'
        f'<text x="18" y="{middle:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 18 {middle:.1f})">Utility (clean)</text>'
    )
    parts += [_point(i, m) for i, m in shown]
    return "".join(parts) + "</svg>"


def _point(index: int, model: ModelReport) -> str:
    a, u = model.overall.attack_success, model.overall.utility_clean
    x, y = _x(a.value or 0.0), _y(u.value or 0.0)
    label = model.label if len(model.label) <= 40 else model.label[:39] + "…"
    return (
        f'<g><line x1="{_x(a.low):.1f}" y1="{y:.1f}" x2="{_x(a.high):.1f}" y2="{y:.1f}" '
        f'stroke="#0b57d0"/><line x1="{x:.1f}" y1="{_y(u.low):.1f}" x2="{x:.1f}" '
        f'y2="{_y(u.high):.1f}" stroke="#0b57d0"/><circle cx="{x:.1f}" cy="{y:.1f}" r="5" '
        f'fill="#0b57d0"/><text x="{x + 8:.1f}" y="{y - 6:.1f}">{index}. {text(label)}</text></g>'
    )


def _comparisons(comparisons: Sequence[Comparison]) -> str:
    if not comparisons:
        return ""
    head = [
        "Group", "Attack success A", "Attack success B", "Difference (B − A)", "Significance",
        "Utility A", "Utility B", "Difference (B − A)", "Significance",
    ]  # fmt: skip
    parts = [
        f"<h3>B = {text(c.model_b)} against A = {text(c.model_a)}</h3>"
        + table(head, [_difference(d) for d in c.groups])
        + _paired(c)
        for c in comparisons
    ]
    return '<section id="comparisons"><h2>Comparisons</h2>' + "".join(parts) + "</section>"


def _paired(c: Comparison) -> str:
    if not any(d.attack_success_paired.n or d.clean_failure_paired.n for d in c.groups):
        return ""
    head = [
        "Group", "Paired trials", "Attack success B − A", "Clean-twin failure B − A",
        "Clean-twin utility B − A",
    ]  # fmt: skip
    rows = [
        [
            text(d.group),
            number(d.attack_success_paired.n + d.clean_failure_paired.n),
            _paired_cell(d.attack_success_paired),
            _paired_cell(d.clean_failure_paired),
            _paired_cell(d.utility_paired),
        ]
        for d in c.groups
    ]
    note = (
        '<p class="small">The same trials (scenario, variant, repeat, seed) of both models: '
        "the difference with Newcombe's paired 95% interval; <b>bold</b> is significant "
        "(the interval excludes 0).</p>"
    )
    return note + table(head, rows)


def _paired_cell(d: PairedOut) -> str:
    if d.value is None:
        return "<td>n/a</td>"
    shown = f"{points(d.value)} ({d.low * 100:+.1f} to {d.high * 100:+.1f}) over {d.n}"
    return f"<td><b>{shown}</b></td>" if d.significant else f"<td>{shown}</td>"


def _difference(d: Difference) -> list[str]:
    return [
        text(d.group),
        rate(d.attack_success_a),
        rate(d.attack_success_b),
        number(points(d.attack_success_diff)),
        _significance(d.attack_success_overlap),
        rate(d.utility_a),
        rate(d.utility_b),
        number(points(d.utility_diff)),
        _significance(d.utility_overlap),
    ]


def _significance(overlap: bool) -> str:
    if overlap:
        return "intervals overlap: difference not significant"
    return "<b>intervals do not overlap: difference significant</b>"


def _egress(report: Report) -> str:
    parts = [
        '<section id="egress"><h2>Egress</h2><p class="small">Connection attempts the sandbox '
        "caught, while each model's server started (start-up) and during trials.</p>"
    ]
    incomplete = sum(t.capture == "incomplete" for t in report.trials)
    unobserved = sum(t.capture == "none" and t.status != "skipped" for t in report.trials)
    if incomplete:
        parts.append(
            f'<p class="warn">{incomplete} trial(s) ran with incomplete egress capture (the '
            "sink died): attempts during them may be missing.</p>"
        )
    if unobserved:
        parts.append(
            f'<p class="warn">{unobserved} trial(s) ran where no sandbox observed egress: '
            "nothing is known of their connection attempts.</p>"
        )
    for m in report.models:
        rows = [
            [
                text(d.destination),
                text(d.protocol),
                number(d.startup),
                number(d.trial),
                number(d.shutdown),
            ]
            for d in m.egress_destinations
        ]
        parts.append(
            f"<h3>{text(m.label)}</h3><p>{m.startup_egress} start-up event(s), "
            f"{m.overall.egress_events} in-trial event(s).</p>"
            + (
                table(["Destination", "Protocol", "Start-up", "In-trial", "After trials"], rows)
                if rows
                else "<p>No connection attempts were recorded.</p>"
            )
        )
    return "".join(parts) + "</section>"


def _audit_cell(audit: Audit | None) -> str:
    """Each finding above info, worst first, or a line saying there is none."""
    if audit is None:
        return text("none (an endpoint)")
    shown = sorted(audit.at_least(Severity.LOW), key=lambda f: -f.severity.rank)
    if not shown:
        return text("nothing above info")
    return "<br>".join(
        f"<b>{text(f.severity.value)}</b> {text(f.rule)}: {text(f.message)}" for f in shown
    )
