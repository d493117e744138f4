"""A rich progress bar fed by the runner's observer callbacks."""

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

from sandbox.backends import ModelProvenance
from sandbox.cli.render import transcript
from sandbox.runner import RunObserver, TrialResult


class ProgressObserver(RunObserver):
    """One bar per model; `-v` prints each transcript above the bars."""

    def __init__(self, console: Console, verbose: bool) -> None:
        self.verbose = verbose
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
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

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
