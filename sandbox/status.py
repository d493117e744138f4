"""A run's status and the exit codes of the `sandbox` command, each in one place.

The README's exit-code table is this module in words; `tests/test_readme.py` keeps them equal.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class RunStatus(StrEnum):
    """What the store says of a run; only `COMPLETE` makes its figures trustworthy."""

    RUNNING = "running"  # begun and not finished (or the process died: rerun to resume)
    COMPLETE = "complete"  # every planned trial stored without error, every sink alive
    INCOMPLETE = "incomplete"  # some trials errored: rerun the same command to retry them
    CAPTURE_INCOMPLETE = "capture-incomplete"  # a sink died: egress may have gone unseen
    FAILED = "failed"  # the run stopped on an error (a server that would not start...)
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM; rerun to resume
    DAMAGED = "damaged"  # the report found stored trials that do not add up (never stored)

    @classmethod
    def of(cls, errored: int, capture_complete: bool) -> RunStatus:
        """The status of a finished run: errors first, then the egress capture."""
        if errored:
            return cls.INCOMPLETE
        return cls.COMPLETE if capture_complete else cls.CAPTURE_INCOMPLETE


class ExitCode(IntEnum):
    """Exit codes of `sandbox run`, `sandbox report` and the `make` gates built on them."""

    OK = 0
    USER_ERROR = 1  # a file, spec, database or server problem: the message says what to fix
    USAGE = 2  # the command line itself is wrong (click's usage errors)
    INCOMPLETE = 3  # a run is not complete: errored trials or a dead sink; rerun to complete
    THRESHOLD = 4  # `sandbox report` or `sandbox audit`: a --fail-on threshold was crossed
    INTERRUPTED = 130  # Ctrl-C or SIGTERM; stored trials stay, a rerun resumes

    @classmethod
    def for_status(cls, status: str) -> ExitCode:
        """0 for a complete run, 3 for any other stored status."""
        return cls.OK if status == RunStatus.COMPLETE else cls.INCOMPLETE
