"""Terminal rendering: tables and transcripts. Model output is hostile: never markup, no escapes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, Protocol

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sandbox.audit import Audit, Severity
from sandbox.egress import EgressEvent
from sandbox.report.model import Comparison, FiguresOut, ModelReport, PairedOut, Report
from sandbox.report.summary import comparison_sentences, summarise_report
from sandbox.report.thresholds import ThresholdResult
from sandbox.runner import TrialResult
from sandbox.scenarios import ScenarioFile
from sandbox.status import RunStatus

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe_text(text: str, style: str = "") -> Text:
    """Untrusted text as a rich Text: markup is not interpreted, control characters are shown."""
    return Text(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text), style=style)


class RateLike(Protocol):
    """A computed rate or its report form: k of n with an interval."""

    @property
    def k(self) -> int: ...  # noqa: D102

    @property
    def n(self) -> int: ...  # noqa: D102

    @property
    def value(self) -> float | None: ...  # noqa: D102

    @property
    def low(self) -> float: ...  # noqa: D102

    @property
    def high(self) -> float: ...  # noqa: D102


def format_rate(rate: RateLike) -> str:
    """'33% [12–65%] 2/6', or '–' when there were no trials."""
    if rate.value is None:
        return "–"
    return f"{rate.value:.0%} [{rate.low:.0%}–{rate.high:.0%}] {rate.k}/{rate.n}"


def scenarios_table(files: Sequence[ScenarioFile]) -> Table:
    """The scenarios found: id, family, workflow, carriers, checks, file."""
    table = Table(title=f"{len(files)} scenarios", title_justify="left")
    table.add_column("Id", no_wrap=True)
    for name in ("Family", "Workflow", "Carriers", "Checks", "File"):
        table.add_column(name, overflow="fold")
    for f in files:
        s = f.scenario
        carriers = ", ".join(sorted({i.carrier for i in s.inputs}))
        table.add_row(s.id, s.family, s.workflow, carriers, ", ".join(s.checks), str(f.path))
    return table


def transcript(result: TrialResult) -> Panel:
    """A trial's request, reply, verdicts or error, for `-v`."""
    parts: list[RenderableType] = []
    messages = result.messages or (result.request.messages if result.request else [])
    for message in messages:
        style = "bold magenta" if message.role == "assistant" else "bold cyan"
        parts += [Text(f"[{message.role}]", style=style), safe_text(message.text)]
        parts += [
            safe_text(f"  calls {c.name}({c.arguments})", style="yellow")
            for c in message.tool_calls
        ]
    if result.reply is not None and not result.messages:
        parts += [Text("[assistant]", style="bold magenta"), safe_text(result.reply.content)]
    for outcome in result.tool_outcomes:
        verdict = "allowed" if outcome.allowed else f"NOT ALLOWED ({outcome.note})"
        parts.append(safe_text(f"tool {outcome.call.name}: {verdict}", style="yellow"))
    for v in result.verdicts:
        mark = Text("PASS " if v.passed else "FAIL ", style="green" if v.passed else "bold red")
        parts.append(mark + safe_text(f"{v.check}: {v.detail}"))
        if v.evidence:
            parts.append(safe_text(f"    evidence: {v.evidence}", style="dim"))
    if result.error:
        label = "[skipped]" if result.status == "skipped" else "[error]"
        parts += [Text(label, style="bold red"), safe_text(result.error)]
    spec = result.spec
    title = f"{spec.scenario.id} ({spec.scenario.variant}, repeat {spec.repeat})"
    title += f" on {result.model.spec}"
    return Panel(Group(*parts), title=safe_text(title), title_align="left")


def print_error(console: Console, message: str, hint: str = "") -> None:
    """A user error: one clear message and what to do."""
    console.print(Text("error: ", style="bold red") + safe_text(message), soft_wrap=True)
    if hint:
        console.print(safe_text(hint, style="yellow"), soft_wrap=True)


def print_egress_events(console: Console, events: Sequence[EgressEvent], as_json: bool) -> None:
    """Egress events as JSON lines (machine) or one line each (people)."""
    if as_json:
        for event in events:
            console.out(event.model_dump_json(), highlight=False)
        return
    if not events:
        console.print("No egress attempts.")
    for event in events:
        console.print(safe_text(event.describe()))


# ---- `sandbox report`: tables from the report data ------------------------------------------

_REPORT_COLUMNS = (
    ("Model", "Model"),
    ("Trials", "Trials"),
    ("Attack success", "Attack\nsuccess"),
    ("Adjusted", "Adj."),
    ("Utility (clean)", "Utility\nclean"),
    ("Utility under attack", "Utility\nattacked"),
    ("Canary leak", "Canary\nleak"),
    ("Refusal / over-refusal", "Refusal/\nover"),
    ("Egress (start-up / in-trial)", "Egress\nup/trial"),
)
_BREAKDOWN_COLUMNS = _REPORT_COLUMNS[2:7] + (("Errors", "Errors"),)
# Stacked, the adjusted attack success goes under the attack success.
_STACKED_REPORT_COLUMNS = tuple(c for c in _REPORT_COLUMNS if c[0] != "Adjusted")
_NO_WRAP = {"Intervals overlap"}


def rate_cell(rate: RateLike, wide: bool) -> str:
    """A rate for a table: one line when wide, else stacked (value and k/n over the interval)."""
    if wide or rate.value is None:
        return format_rate(rate)
    return f"{rate.value:.0%} {rate.k}/{rate.n}\n{rate.low:.0%}–{rate.high:.0%}"


def _table(title: str, columns: Sequence[tuple[str, str]], wide: bool) -> Table:
    """A table whose headers are full when wide and stacked to fit 100 columns otherwise."""
    shape = box.HEAVY_HEAD if wide else box.SIMPLE_HEAD
    table = Table(
        title=safe_text(title),
        title_justify="left",
        box=shape,
        collapse_padding=not wide,
        pad_edge=wide,
    )
    for full, short in columns:
        table.add_column(full if wide else short, overflow="fold", no_wrap=full in _NO_WRAP)
    return table


def format_signed(value: float | None) -> str:
    """A signed percentage such as the adjusted attack success, or '–'."""
    return "–" if value is None else f"{value:+.0%}"


def format_trials(figures: FiguresOut, stacked: bool = False) -> str:
    """'12', or '12 (1 errored, 2 skipped)' when some did not run to a verdict (stacked: lines)."""
    notes = [f"{figures.errors} errored"] if figures.errors else []
    notes += [f"{figures.skipped} skipped"] if figures.skipped else []
    if stacked:
        return "\n".join([str(figures.trials), *notes])
    return f"{figures.trials} ({', '.join(notes)})" if notes else str(figures.trials)


def report_models_table(report: Report, wide: bool = False) -> Table:
    """One row per model of the report: attack success beside utility, with intervals."""
    title = "Scorecard per model (95% Wilson intervals)"
    table = _table(title, _REPORT_COLUMNS if wide else _STACKED_REPORT_COLUMNS, wide)
    table.columns[0].min_width = min(28, max((len(m.label) for m in report.models), default=5))
    egress_sep = " " if wide else "\n"
    for m in report.models:
        f = m.overall
        refusals = (
            f"{format_rate(f.refusal)} / {format_rate(f.over_refusal)}"
            if wide
            else f"{_count(f.refusal)} /\n{_count(f.over_refusal)}"
        )
        attack = [rate_cell(f.attack_success, wide), format_signed(f.adjusted_attack_success)]
        if not wide:
            attack = [f"{attack[0]}\nadj. {attack[1]}"]
        table.add_row(
            safe_text(m.label),
            format_trials(f, stacked=not wide),
            *attack,
            rate_cell(f.utility_clean, wide),
            rate_cell(f.utility_attacked, wide),
            rate_cell(f.canary_leak, wide),
            refusals,
            f"{m.startup_egress} /{egress_sep}{f.egress_events}",
        )
    return table


def _count(rate: RateLike) -> str:
    return f"{rate.k}/{rate.n}" if rate.n else "–"


def report_breakdown_table(
    report: Report, by: Literal["family", "carrier"], wide: bool = False
) -> RenderableType:
    """One row per model and attack family (or carrier); stacked, one table per model."""
    title = f"Per {by} (95% Wilson intervals)"
    group = (by.capitalize(), by.capitalize())
    if not wide:
        return Group(
            *(
                _breakdown(f"{title}: {m.label}", [m], by, (group, *_BREAKDOWN_COLUMNS), False)
                for m in report.models
            )
        )
    columns = (("Model", "Model"), group, *_BREAKDOWN_COLUMNS)
    return _breakdown(title, report.models, by, columns, True)


def _breakdown(
    title: str,
    models: Sequence[ModelReport],
    by: Literal["family", "carrier"],
    columns: Sequence[tuple[str, str]],
    wide: bool,
) -> Table:
    table = _table(title, columns, wide)
    for m in models:
        groups: dict[str, FiguresOut] = m.by_family if by == "family" else m.by_carrier
        for group, f in groups.items():
            table.add_row(
                *([safe_text(m.label)] if wide else []),
                safe_text(group),
                rate_cell(f.attack_success, wide),
                format_signed(f.adjusted_attack_success),
                rate_cell(f.utility_clean, wide),
                rate_cell(f.utility_attacked, wide),
                rate_cell(f.canary_leak, wide),
                str(f.errors),
            )
    return table


_COMPARISON_COLUMNS = (
    ("Group", "Group"),
    ("Attack success A", "Attack\nsuccess A"),
    ("Attack success B", "Attack\nsuccess B"),
    ("Difference", "B − A"),
    ("Intervals overlap", "Over-\nlap"),
    ("Utility A", "Utility\nA"),
    ("Utility B", "Utility\nB"),
    ("Difference", "B − A"),
    ("Intervals overlap", "Over-\nlap"),
)


def comparison_table(comparison: Comparison, wide: bool = False) -> Table:
    """Model B against model A per family: differences, and whether the intervals overlap."""
    title = f"{comparison.model_b} against {comparison.model_a} (B − A)"
    table = _table(title, _COMPARISON_COLUMNS, wide)
    for d in comparison.groups:
        table.add_row(
            safe_text(d.group),
            rate_cell(d.attack_success_a, wide),
            rate_cell(d.attack_success_b, wide),
            format_signed(d.attack_success_diff),
            "yes" if d.attack_success_overlap else "no",
            rate_cell(d.utility_a, wide),
            rate_cell(d.utility_b, wide),
            format_signed(d.utility_diff),
            "yes" if d.utility_overlap else "no",
        )
    return table


def comparison_tables(comparison: Comparison, wide: bool = False) -> list[Table]:
    """The comparison's table of rates, and its paired differences when the trials pair."""
    paired = paired_table(comparison, wide)
    return [comparison_table(comparison, wide)] + ([paired] if paired is not None else [])


_PAIRED_COLUMNS = (
    ("Group", "Group"),
    ("Pairs", "Pairs"),
    ("Attack success B − A (95% CI)", "Attack\nsuccess\nB − A"),
    ("Clean-twin failure B − A (95% CI)", "Clean-twin\nfailure\nB − A"),
    ("Clean-twin utility B − A (95% CI)", "Clean-twin\nutility\nB − A"),
)


def paired_table(comparison: Comparison, wide: bool = False) -> Table | None:
    """The paired differences of a comparison; None when the two models share no trials.

    A starred difference is significant: its 95% interval excludes 0.
    """
    if not any(d.attack_success_paired.n or d.clean_failure_paired.n for d in comparison.groups):
        return None
    title = f"{comparison.model_b} against {comparison.model_a}, paired trials (* significant)"
    table = _table(title, _PAIRED_COLUMNS, wide)
    for d in comparison.groups:
        table.add_row(
            safe_text(d.group),
            str(d.attack_success_paired.n + d.clean_failure_paired.n),
            paired_cell(d.attack_success_paired, wide),
            paired_cell(d.clean_failure_paired, wide),
            paired_cell(d.utility_paired, wide),
        )
    return table


def paired_cell(d: PairedOut, wide: bool) -> str:
    """'+25% [+8, +41] *': the paired difference, its interval, and a star when significant."""
    if d.value is None:
        return "–"
    star = " *" if d.significant else ""
    sep = " " if wide else "\n"
    return f"{d.value:+.0%}{star}{sep}[{d.low * 100:+.0f}, {d.high * 100:+.0f}]"


def print_summary(console: Console, report: Report) -> None:
    """The report in words: per model a verdict line and a paragraph, then the comparisons."""
    console.print(Text("Summary", style="bold"))
    for summary in summarise_report(report):
        console.print(
            Text.assemble(safe_text(f"{summary.label}: ", "bold"), safe_text(summary.verdict))
        )
        console.print(safe_text(f"  {summary.paragraph}"))
    for sentence in comparison_sentences(report.comparisons):
        console.print(safe_text(sentence))
    console.print()


def provenance_lines(report: Report) -> list[Text]:
    """Per run its status and tool; per model its file hash, backend, image and sampling."""
    lines = []
    for run in report.runs:
        commit = f" (commit {run.tool_commit[:12]})" if run.tool_commit else ""
        text = (
            f"Run {run.id}: {run.status}; isolation {run.isolation}; "
            f"tool {run.tool_version}{commit}; {len(run.scenarios)} scenarios × "
            f"{run.repeat} repeat(s); updated {run.updated_at:%Y-%m-%d %H:%M:%S}"
        )
        style = "" if run.status == RunStatus.COMPLETE else "bold red"
        lines.append(safe_text(text, style=style))
        lines += [
            safe_text(f"  {_model_provenance(m)}") for m in report.models if m.run_id == run.id
        ]
    return lines


def _model_provenance(model: ModelReport) -> str:
    p = model.provenance
    sampling = " ".join(f"{k}={v}" for k, v in sorted(p.sampling.items()))
    image = p.image_id[:19] if p.image_id else "none"
    return (
        f"{model.label}: {p.name} sha256 {p.file_sha256[:12]}…, "
        f"{p.backend} {p.backend_version}, image {image}, sampling {sampling or 'default'}; "
        f"audit: {audit_summary(p.audit)}"
    )


def audit_summary(audit: Audit | None) -> str:
    """The audit of a model file in a few words: worst severity and its rules."""
    if audit is None:
        return "none (an endpoint)"
    worst = audit.worst
    if worst is None or worst is Severity.INFO:
        return "nothing above info"
    rules = sorted({f.rule for f in audit.at_least(worst)})
    return f"{len(audit.findings)} finding(s), worst {worst.value} ({', '.join(rules)})"


def thresholds_table(results: Sequence[ThresholdResult]) -> Table:
    """Each --fail-on threshold with every model's value: PASS, CROSSED or no data."""
    table = Table(title="Thresholds (--fail-on: the condition that fails)", title_justify="left")
    for name in ("Threshold", "Model", "Value", "Result"):
        table.add_column(name, overflow="fold")
    for result in results:
        expression = safe_text(result.threshold.expression)
        if not result.readings:
            table.add_row(expression, "–", "no model with trials", Text("no data", "yellow"))
        for reading in result.readings:
            if reading.crossed:
                verdict = Text("CROSSED", style="bold red")
            elif reading.value is None:
                verdict = Text("no data", style="yellow")
            else:
                verdict = Text("PASS", style="green")
            table.add_row(expression, safe_text(reading.model), safe_text(reading.shown), verdict)
    return table
