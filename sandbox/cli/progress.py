"""A rich progress bar fed by `sandbox.evaluate`'s observer callbacks."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.status import Status

from sandbox.api import EvaluationObserver
from sandbox.backends import ModelProvenance
from sandbox.cli.render import transcript
from sandbox.runner import TrialResult


class ProgressObserver(EvaluationObserver):
    """A spinner while models are prepared, then one bar per model; `-v` prints transcripts."""

    def __init__(self, console: Console, verbose: bool) -> None:
        self.console = console
        self.verbose = verbose
        self.status: Status | None = None
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[errors]} errors"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None
        self.errors = 0

    def __enter__(self) -> ProgressObserver:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_status()
        self.progress.stop()

    def preparing(self, models: int) -> None:
        """A spinner until the run begins (rich shows one live display at a time)."""
        self.status = self.console.status(
            "Preparing models (assembling and hashing model files)..."
        )
        self.status.start()

    def run_started(self, run_id: str, resumed: bool, shape: str) -> None:
        """Say which run this is, then start the bars."""
        self._stop_status()
        verb = "Resuming" if resumed else "Starting"
        self.console.print(f"{verb} run [bold]{run_id}[/] ({shape})")
        self.progress.start()

    def _stop_status(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def model_started(self, model: ModelProvenance, planned: int, skipped: int) -> None:
        """Add a bar for the model, already advanced by the trials resumed from the store."""
        self.errors = 0
        label = escape(model.spec)
        note = f" ({skipped} already stored)" if skipped else ""
        self.task = self.progress.add_task(
            f"{label}{note}", total=planned, completed=skipped, errors=0
        )

    def trial_finished(self, result: TrialResult) -> None:
        """Advance the bar; with -v, print the transcript."""
        self.errors += result.status == "error"
        if self.task is not None:
            self.progress.update(self.task, advance=1, errors=self.errors)
        if self.verbose:
            self.progress.console.print(transcript(result))
