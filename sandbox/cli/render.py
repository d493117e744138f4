"""Terminal rendering: tables and transcripts. Model output is hostile: never markup, no escapes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, Protocol

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sandbox.egress import EgressEvent
from sandbox.report.model import Comparison, FiguresOut, ModelReport, Report
from sandbox.report.thresholds import ThresholdResult
from sandbox.runner import TrialResult
from sandbox.scenarios import ScenarioFile

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
    "Model",
    "Trials",
    "Attack success",
    "Adjusted",
    "Utility (clean)",
    "Utility under attack",
    "Canary leak",
    "Refusal / over-refusal",
    "Egress (start-up / in-trial)",
)


def format_signed(value: float | None) -> str:
    """A signed percentage such as the adjusted attack success, or '–'."""
    return "–" if value is None else f"{value:+.0%}"


def format_trials(figures: FiguresOut) -> str:
    """'12', or '12 (1 errored, 2 skipped)' when some did not run to a verdict."""
    notes = [f"{figures.errors} errored"] if figures.errors else []
    notes += [f"{figures.skipped} skipped"] if figures.skipped else []
    return f"{figures.trials} ({', '.join(notes)})" if notes else str(figures.trials)


def report_models_table(report: Report) -> Table:
    """One row per model of the report: attack success beside utility, with intervals."""
    table = Table(title="Scorecard per model (95% Wilson intervals)", title_justify="left")
    for name in _REPORT_COLUMNS:
        table.add_column(name, overflow="fold")
    for m in report.models:
        f = m.overall
        table.add_row(
            safe_text(m.label),
            format_trials(f),
            format_rate(f.attack_success),
            format_signed(f.adjusted_attack_success),
            format_rate(f.utility_clean),
            format_rate(f.utility_attacked),
            format_rate(f.canary_leak),
            f"{format_rate(f.refusal)} / {format_rate(f.over_refusal)}",
            f"{m.startup_egress} / {f.egress_events}",
        )
    return table


def report_breakdown_table(report: Report, by: Literal["family", "carrier"]) -> Table:
    """One row per model and attack family (or carrier) of the report."""
    table = Table(title=f"Per {by} (95% Wilson intervals)", title_justify="left")
    for name in (
        "Model",
        by.capitalize(),
        "Attack success",
        "Adjusted",
        "Utility (clean)",
        "Utility under attack",
        "Canary leak",
        "Errors",
    ):
        table.add_column(name, overflow="fold")
    for m in report.models:
        groups: dict[str, FiguresOut] = m.by_family if by == "family" else m.by_carrier
        for group, f in groups.items():
            table.add_row(
                safe_text(m.label),
                safe_text(group),
                format_rate(f.attack_success),
                format_signed(f.adjusted_attack_success),
                format_rate(f.utility_clean),
                format_rate(f.utility_attacked),
                format_rate(f.canary_leak),
                str(f.errors),
            )
    return table


def comparison_table(comparison: Comparison) -> Table:
    """Model B against model A per family: differences, and whether the intervals overlap."""
    title = safe_text(f"{comparison.model_b} against {comparison.model_a} (B − A)")
    table = Table(title=title, title_justify="left")
    for name in ("Group", "Attack success A", "Attack success B", "Difference"):
        table.add_column(name, overflow="fold")
    table.add_column("Intervals overlap", no_wrap=True)
    for name in ("Utility A", "Utility B", "Difference"):
        table.add_column(name, overflow="fold")
    table.add_column("Intervals overlap", no_wrap=True)
    for d in comparison.groups:
        table.add_row(
            safe_text(d.group),
            format_rate(d.attack_success_a),
            format_rate(d.attack_success_b),
            format_signed(d.attack_success_diff),
            "yes" if d.attack_success_overlap else "no",
            format_rate(d.utility_a),
            format_rate(d.utility_b),
            format_signed(d.utility_diff),
            "yes" if d.utility_overlap else "no",
        )
    return table


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
        style = "" if run.status == "complete" else "bold red"
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
        f"{p.backend} {p.backend_version}, image {image}, sampling {sampling or 'default'}"
    )


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
