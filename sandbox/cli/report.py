"""`sandbox report`: read runs from the store, write HTML, JSON, JUnit and SARIF, gate.

The exit code is the CI gate: incomplete runs (3) come before crossed thresholds (4).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from sandbox import __version__
from sandbox.cli.files import write_report_file
from sandbox.cli.render import (
    comparison_tables,
    print_summary,
    provenance_lines,
    report_breakdown_table,
    report_models_table,
    safe_text,
    thresholds_table,
)
from sandbox.errors import StoreError
from sandbox.report.collect import build_report, resolve_runs
from sandbox.report.html import render_html
from sandbox.report.junit import render_junit
from sandbox.report.model import Report
from sandbox.report.sarif import render_sarif
from sandbox.report.thresholds import ThresholdResult, check_thresholds, parse_thresholds
from sandbox.status import ExitCode, RunStatus
from sandbox.store import open_store


@dataclass(frozen=True)
class ReportRequest:
    """Everything `sandbox report` was asked to do."""

    db_url: str
    run_ids: Sequence[str] = ()
    html: Path | None = None
    json: Path | None = None
    junit: Path | None = None
    sarif: Path | None = None
    fail_on: Sequence[str] = ()
    wide: bool = False  # full-width tables instead of ones that fit 100 columns


def execute_report(request: ReportRequest, console: Console) -> int:
    """Build the report, write the files asked for, print the scorecard; returns the exit code."""
    thresholds = parse_thresholds(request.fail_on)  # a typo fails before any work
    report = load_report(request.db_url, request.run_ids)
    written = write_files(report, request)
    results = check_thresholds(report, thresholds)
    for path, kind in written:
        console.print(safe_text(f"wrote {kind} report {path}"))
    print_scorecard(console, report, full=not written, wide=request.wide)
    if results:
        console.print(thresholds_table(results))
    code = exit_code(report, results)
    print_verdict(console, report, results, code)
    return code


def load_report(db_url: str, run_ids: Sequence[str]) -> Report:
    """The report of the given runs (default: the latest) from an existing results database."""
    if db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///").split("?")[0]).expanduser()
        if not path.is_file():
            raise StoreError(
                f"no results database at {path}.",
                hint="Run `sandbox run` first, or pass the database it wrote with --db.",
            )
    store = open_store(db_url, create=False)
    try:
        return build_report(store, resolve_runs(store, run_ids))
    finally:
        store.engine.dispose()


def write_files(report: Report, request: ReportRequest) -> list[tuple[Path, str]]:
    """Write each report file asked for (creating folders); returns (path, kind) written."""
    renderers = (
        (request.html, "HTML", render_html),
        (request.json, "JSON", lambda r: r.model_dump_json(indent=2) + "\n"),
        (request.junit, "JUnit", render_junit),
        (request.sarif, "SARIF", lambda r: json.dumps(render_sarif(r, __version__), indent=1)),
    )
    written = []
    for path, kind, render in renderers:
        if path is not None:
            write_report_file(path, render(report))
            written.append((path, kind))
    return written


def exit_code(report: Report, results: Sequence[ThresholdResult]) -> ExitCode:
    """3 when a run is not complete (its figures cannot be trusted), 4 when a threshold crossed."""
    if any(run.status != RunStatus.COMPLETE for run in report.runs):
        return ExitCode.INCOMPLETE
    if any(result.crossed for result in results):
        return ExitCode.THRESHOLD
    return ExitCode.OK


def print_scorecard(console: Console, report: Report, full: bool, wide: bool = False) -> None:
    """The summary in words, per model and provenance; in full also the breakdowns."""
    print_summary(console, report)
    console.print(report_models_table(report, wide))
    if full:
        console.print(report_breakdown_table(report, "family", wide))
        console.print(report_breakdown_table(report, "carrier", wide))
        for comparison in report.comparisons:
            for table in comparison_tables(comparison, wide):
                console.print(table)
    for line in provenance_lines(report):
        console.print(line)


def print_verdict(
    console: Console, report: Report, results: Sequence[ThresholdResult], code: int
) -> None:
    """One closing line per problem: which runs did not complete, which thresholds crossed."""
    for run in report.runs:
        if run.status == RunStatus.DAMAGED:
            console.print(
                safe_text(
                    f"Run {run.id} is damaged: {run.damage}. Its database was changed after the "
                    "run; its figures are not trustworthy. Run the evaluation again.",
                    style="bold red",
                )
            )
        elif run.status != RunStatus.COMPLETE:
            console.print(
                safe_text(
                    f"Run {run.id} is {run.status}, not complete: its figures are not "
                    "trustworthy. Run the same `sandbox run` command again to complete it.",
                    style="bold red",
                )
            )
    crossed = [r.threshold.expression for r in results if r.crossed]
    if crossed:
        console.print(safe_text(f"Crossed: {', '.join(crossed)}.", style="bold red"))
    if code == 0:
        checked = f"; {len(results)} threshold(s) hold" if results else ""
        console.print(f"Every run is complete{checked}.")
