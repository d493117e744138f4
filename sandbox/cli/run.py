"""`sandbox run`: `sandbox.evaluate` with a progress bar, the summary and the tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from sandbox.api import Evaluation, Interrupted, evaluate
from sandbox.cli.files import write_report_file
from sandbox.cli.progress import ProgressObserver
from sandbox.cli.render import (
    comparison_tables,
    print_summary,
    report_breakdown_table,
    report_models_table,
    safe_text,
)
from sandbox.isolation.base import IsolationName
from sandbox.report.html import render_html
from sandbox.runner import Shard
from sandbox.status import ExitCode
from sandbox.store import EgressSummary


@dataclass(frozen=True)
class RunRequest:
    """Everything `sandbox run` was asked to do."""

    paths: Sequence[Path]
    models: Sequence[str]
    repeat: int
    concurrency: int
    db_url: str
    resume: bool
    verbose: bool
    max_tokens: int
    seed: int
    timeout_s: float | None  # None: scaled to the measured speed
    isolation: IsolationName = "auto"
    allow_startup_egress: bool = False
    gpus: str = "all"
    wide: bool = False  # full-width tables instead of ones that fit 100 columns
    html: Path | None = None  # write the HTML report of the run here
    shard: Shard | None = None  # run one slice of the plan (--shard K/N)
    templates: Sequence[str] = ()  # each runs every GGUF model again with it (--template)


def execute_run(request: RunRequest, console: Console) -> int:
    """Run the evaluation and print the summary; returns the exit code."""
    try:
        with ProgressObserver(console, request.verbose) as observer:
            result = evaluate(
                request.paths,
                request.models,
                templates=request.templates,
                repeat=request.repeat,
                concurrency=request.concurrency,
                db=request.db_url,
                resume=request.resume,
                max_tokens=request.max_tokens,
                seed=request.seed,
                timeout_s=request.timeout_s,
                isolation=request.isolation,
                allow_startup_egress=request.allow_startup_egress,
                gpus=request.gpus,
                shard=request.shard,
                observer=observer,
            )
    except Interrupted as stop:
        return interrupted(console, stop)
    _print_summary(console, result, request.wide)
    _print_egress(console, result.egress, result.isolation)
    if request.html is not None:
        write_report_file(request.html, render_html(result.report))
        console.print(safe_text(f"Wrote the HTML report: {request.html}"))
    return result.exit_code


def interrupted(console: Console, stop: Interrupted) -> int:
    """Say where the finished trials are and how to resume; the exit code."""
    console.print(
        f"[yellow]Interrupted.[/] Trials finished so far are stored in run "
        f"{stop.run_id}; run the same command again to resume."
    )
    return ExitCode.INTERRUPTED


def _print_summary(console: Console, result: Evaluation, wide: bool) -> None:
    report, outcome = result.report, result.outcome
    print_summary(console, report)
    console.print(report_models_table(report, wide))
    console.print(report_breakdown_table(report, "family", wide))
    console.print(report_breakdown_table(report, "carrier", wide))
    for comparison in report.comparisons:
        for table in comparison_tables(comparison, wide):
            console.print(table)
    console.print(
        f"Run {result.run_id}: {outcome.ran} trials run now, {outcome.skipped} resumed "
        f"from the store; results in {result.db_url}"
    )
    if outcome.retried:
        console.print(f"{outcome.retried} trial(s) timed out once and were run again.")
    if result.errored:
        console.print(
            f"[red]{result.errored} trials errored.[/] Run the same command again to retry."
        )
    if result.waiting:
        console.print(
            f"This shard's trials are done; {result.waiting} trial(s) of other shards are not "
            "stored yet, so the run stays running until the last shard finishes."
        )


def _print_egress(console: Console, summary: EgressSummary, isolation: str) -> None:
    if isolation == "none":
        console.print("[yellow]Egress was not observed:[/] the endpoints run outside any sandbox.")
        return
    note = "" if summary.capture_complete else " [red]Capture incomplete: a sink died.[/]"
    console.print(
        f"Egress ({isolation} sandbox): {summary.startup} attempt(s) at server start-up, "
        f"{summary.in_trials} during trials, {summary.after_trials} after the last trial."
        f"{note}"
    )
    for line in summary.examples:
        console.print(safe_text(f"  {line}"))
