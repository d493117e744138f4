"""`sandbox run`: load scenarios, prepare models, run trials into the store, print the table."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from sandbox import __version__
from sandbox.backends import ModelProvenance, PreparedModel, parse_model_spec, prepare_model
from sandbox.carriers import check_buildable
from sandbox.chat import Sampling
from sandbox.cli.exits import EXIT_INCOMPLETE, EXIT_INTERRUPTED
from sandbox.cli.files import write_report_file
from sandbox.cli.progress import ProgressObserver
from sandbox.cli.render import (
    comparison_table,
    print_summary,
    report_breakdown_table,
    report_models_table,
    safe_text,
)
from sandbox.errors import SandboxError, ScenarioError
from sandbox.isolation.select import IsolationName, choose_isolation, with_image_ids
from sandbox.paths import results_dir
from sandbox.report.collect import build_report
from sandbox.report.html import render_html
from sandbox.report.model import Report
from sandbox.runner import RunOptions, RunOutcome, TrialSpec, plan_trials, run_trials
from sandbox.scenarios import ScenarioFile, load_scenarios
from sandbox.store import EgressSummary, RunConfig, RunHandle, open_store


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
    sampling: Sampling
    timeout_s: float | None  # None: scaled to the measured speed
    isolation: IsolationName = "auto"
    allow_startup_egress: bool = False
    gpus: str = "all"
    wide: bool = False  # full-width tables instead of ones that fit 100 columns
    html: Path | None = None  # write the HTML report of the run here


def load_or_fail(paths: Sequence[Path]) -> list[ScenarioFile]:
    """Load scenarios; any invalid file stops the run with every problem listed."""
    loaded = load_scenarios(paths, check_buildable)
    if loaded.errors:
        problems = "\n".join(str(e) for e in loaded.errors)
        raise ScenarioError(
            f"{len(loaded.errors)} scenario file(s) are invalid:\n{problems}",
            hint="Fix them (see `sandbox scenarios validate`), then run again.",
        )
    if not loaded.files:
        raise ScenarioError(
            f"no scenario files (*.yaml) under {', '.join(map(str, paths))}.",
            hint="Pass a scenario file or a folder of them, e.g. scenarios/.",
        )
    return loaded.files


def execute_run(request: RunRequest, console: Console) -> int:
    """Run the evaluation and print the summary; returns the exit code."""
    files = load_or_fail(request.paths)
    specs = [parse_model_spec(m) for m in request.models]
    isolation = choose_isolation(
        request.isolation, any(s.kind != "openai" for s in specs), request.gpus
    )
    store = open_store(request.db_url)
    threads = max(1, _cpu_count() // max(1, request.concurrency))
    with console.status("Preparing models (assembling and hashing model files)..."):
        models = [
            prepare_model(spec, request.sampling, threads, request.allow_startup_egress)
            for spec in specs
        ]
    models, images = with_image_ids(isolation, models)
    config = _run_config(request, files, [m.provenance for m in models], isolation.name, images)
    handle = store.begin_run(config, resume=request.resume)
    verb = "Resuming" if handle.resumed else "Starting"
    shape = (
        f"{len(files)} scenarios × 2 variants × {len(models)} model(s) × {request.repeat} repeat(s)"
    )
    console.print(f"{verb} run [bold]{handle.run_id}[/] ({shape})")
    plan = plan_trials(files, len(models), request.repeat, request.sampling)
    options = RunOptions(
        concurrency=request.concurrency,
        timeout_s=request.timeout_s,
        log_dir=results_dir() / "logs" / handle.run_id,
        isolation=isolation,
        run_id=handle.run_id,
    )
    try:
        outcome = _run_with_progress(plan, models, handle, options, console, request.verbose)
    except SandboxError:
        store.finish_run(handle.run_id, "failed")
        raise
    except KeyboardInterrupt:
        store.finish_run(handle.run_id, "interrupted")
        console.print(
            f"[yellow]Interrupted.[/] Trials finished so far are stored in run "
            f"{handle.run_id}; run the same command again to resume."
        )
        return EXIT_INTERRUPTED
    summaries = store.trial_summaries(handle.run_id)
    errored = sum(s.status == "error" for s in summaries)
    egress = store.egress_summary(handle.run_id)
    status = "complete"
    if not egress.capture_complete:
        status = "capture-incomplete"
    if errored:
        status = "incomplete"
    store.finish_run(handle.run_id, status)
    report = build_report(store, [handle.run_id])
    _print_summary(console, handle.run_id, outcome, report, errored, request)
    _print_egress(console, egress, isolation.name)
    if request.html is not None:
        write_report_file(request.html, render_html(report))
        console.print(safe_text(f"Wrote the HTML report: {request.html}"))
    return 0 if status == "complete" else EXIT_INCOMPLETE


def _run_with_progress(
    plan: Sequence[TrialSpec],
    models: Sequence[PreparedModel],
    handle: RunHandle,
    options: RunOptions,
    console: Console,
    verbose: bool,
) -> RunOutcome:
    with ProgressObserver(console, verbose) as observer:
        return run_trials(plan, models, handle, options, observer)


def _print_summary(
    console: Console,
    run_id: str,
    outcome: RunOutcome,
    report: Report,
    errored: int,
    request: RunRequest,
) -> None:
    print_summary(console, report)
    console.print(report_models_table(report, request.wide))
    console.print(report_breakdown_table(report, "family", request.wide))
    console.print(report_breakdown_table(report, "carrier", request.wide))
    for comparison in report.comparisons:
        console.print(comparison_table(comparison, request.wide))
    console.print(
        f"Run {run_id}: {outcome.ran} trials run now, {outcome.skipped} resumed "
        f"from the store; results in {request.db_url}"
    )
    if outcome.retried:
        console.print(f"{outcome.retried} trial(s) timed out once and were run again.")
    if errored:
        console.print(f"[red]{errored} trials errored.[/] Run the same command again to retry.")


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


def _run_config(
    request: RunRequest,
    files: Sequence[ScenarioFile],
    models: Sequence[ModelProvenance],
    isolation: str,
    images: dict[str, str],
) -> RunConfig:
    identity = {
        "scenarios": [(f.scenario.id, f.sha256) for f in files],
        "models": [m.model_dump(exclude={"file_path"}) for m in models],
        "repeat": request.repeat,
        "isolation": isolation,
        "images": images,
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return RunConfig(
        key=key,
        files=files,
        models=models,
        repeat=request.repeat,
        isolation=isolation,
        options={
            "concurrency": request.concurrency,
            "timeout_s": request.timeout_s,
            "allow_startup_egress": request.allow_startup_egress,
            **images,
        },
        tool_version=__version__,
        tool_commit=_git_commit(),
    )


def _git_commit() -> str:
    """The project's commit when run from a checkout, else ''."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0))
