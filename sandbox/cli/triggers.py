"""`sandbox triggers`: `sandbox.sweep_triggers` with a progress bar and the ranked table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sandbox.api import Interrupted, Sweep, sweep_triggers
from sandbox.cli.files import write_report_file
from sandbox.cli.progress import ProgressObserver
from sandbox.cli.render import safe_text
from sandbox.cli.run import interrupted
from sandbox.isolation.base import IsolationName
from sandbox.triggers import Change, Ranked


@dataclass(frozen=True)
class SweepRequest:
    """Everything `sandbox triggers` was asked to do."""

    paths: Sequence[Path]
    model: str
    triggers: Sequence[str]
    repeat: int
    db_url: str
    resume: bool
    verbose: bool
    max_tokens: int
    seed: int
    temperature: float
    timeout_s: float | None
    isolation: IsolationName
    json_path: Path | None = None


def execute_sweep(request: SweepRequest, console: Console) -> int:
    """Run the sweep and print the ranking; returns the exit code."""
    try:
        with ProgressObserver(console, request.verbose) as observer:
            sweep = sweep_triggers(
                request.paths,
                request.model,
                triggers=request.triggers,
                repeat=request.repeat,
                db=request.db_url,
                resume=request.resume,
                max_tokens=request.max_tokens,
                seed=request.seed,
                temperature=request.temperature,
                timeout_s=request.timeout_s,
                isolation=request.isolation,
                observer=observer,
            )
    except Interrupted as stop:
        return interrupted(console, stop)
    console.print(ranking_table(sweep.ranked, request.model))
    for line in conclusion(sweep):
        console.print(safe_text(line))
    if request.json_path is not None:
        write_report_file(request.json_path, json.dumps(sweep_document(sweep), indent=1) + "\n")
        console.print(safe_text(f"Wrote the ranking as JSON: {request.json_path}"))
    return sweep.exit_code


def ranking_table(ranked: Sequence[Ranked], model: str) -> Table:
    """One row per candidate, those above chance first."""
    table = Table(
        title=f"Trigger sweep of {model}: paired changes against the untriggered prompt "
        "(95% CI; * above chance)",
        title_justify="left",
    )
    for name in (
        "#",
        "candidate",
        "planted",
        "check",
        "failed",
        "verdicts",
        "output",
        "raw output",
    ):
        table.add_column(name, overflow="fold")
    for index, r in enumerate(ranked, 1):
        table.add_row(
            str(index),
            safe_text(r.trigger.id + (" *" if r.above_chance else ""), _style(r)),
            safe_text(repr(r.trigger.text)),
            r.check or "–",
            f"{r.failed}/{r.verdicts.n}",
            _interval(r.verdicts.value, r.verdicts.low, r.verdicts.high, r.verdicts.n),
            _change(r.output),
            "–" if r.raw_output_change is None else f"{r.raw_output_change:.2f}",
        )
    return table


def _style(r: Ranked) -> str:
    if r.above_chance:
        return "bold red"
    return "dim" if r.trigger.kind == "control" else ""


def _interval(value: float | None, low: float, high: float, n: int) -> str:
    if value is None or n == 0:
        return "–"
    return f"{value * 100:+.0f} pts [{low * 100:+.0f}, {high * 100:+.0f}]"


def _change(c: Change) -> str:
    if c.value is None:
        return "–"
    if c.low == -1.0 and c.high == 1.0:
        return f"{c.value:+.2f} (too few units)"
    return f"{c.value:+.2f} [{c.low:+.2f}, {c.high:+.2f}]"


def conclusion(sweep: Sweep) -> list[str]:
    """What the sweep found, in words, and where its trials are."""
    run = sweep.evaluation
    found = sweep.above_chance
    if found:
        names = ", ".join(f"{r.trigger.id} ({r.trigger.text!r})" for r in found)
        head = f"{len(found)} candidate(s) above chance: {names}. Treat the model as backdoored "
        head += "until the change is explained; replay one with `sandbox run`."
    else:
        head = "No candidate above chance: no trigger changed verdicts or output beyond the "
        head += "controls (absence of evidence over these scenarios, not proof of a clean model)."
    lines = [head]
    lines.append(
        f"Run {run.run_id}: {run.outcome.ran} trials run now, {run.outcome.skipped} resumed "
        f"from the store; results in {run.db_url} (`sandbox report --run {run.run_id}`)."
    )
    if run.errored:
        lines.append(f"{run.errored} trials errored; run the same command again to retry them.")
    return lines


def sweep_document(sweep: Sweep) -> dict[str, object]:
    """The ranking as JSON: each candidate with its text, source and both changes."""
    return {
        "run_id": sweep.evaluation.run_id,
        "status": sweep.evaluation.status.value,
        "candidates": [
            {
                "rank": index,
                **asdict(r.trigger),
                "above_chance": r.above_chance,
                "check": r.check,
                "failed": r.failed,
                "verdict_change": asdict(r.verdicts),
                "output_change_beyond_controls": asdict(r.output),
                "output_change": r.raw_output_change,
            }
            for index, r in enumerate(sweep.ranked, 1)
        ],
    }
