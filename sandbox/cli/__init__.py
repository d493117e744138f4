"""The `sandbox` command: the only place that prints or exits."""

from __future__ import annotations

import os
import signal
import sys
import traceback
from types import FrameType

import typer

from sandbox.cli.app import app, err_console
from sandbox.errors import SandboxError
from sandbox.status import ExitCode

__all__ = ["app", "main"]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: user errors print one message (traceback only with -v or SANDBOX_DEBUG)."""
    signal.signal(signal.SIGTERM, _raise_interrupt)  # clean up servers as on Ctrl-C
    try:
        code = app(standalone_mode=False)  # click returns the exit code instead of exiting
    except SandboxError as exc:
        from sandbox.cli.render import print_error

        if _wants_traceback():
            traceback.print_exc()
        print_error(err_console, exc.message, exc.hint)
        sys.exit(ExitCode.USER_ERROR)
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        sys.exit(ExitCode.INTERRUPTED)
    except SystemExit:
        raise
    except Exception as exc:  # click's usage errors arrive here in non-standalone mode
        _exit_for_click(exc)
    sys.exit(code if isinstance(code, int) else 0)


def _exit_for_click(exc: Exception) -> None:
    """Usage errors print click's message (no traceback); anything else is a bug: re-raise."""
    if isinstance(exc, typer.Exit):
        sys.exit(exc.exit_code)
    if isinstance(exc, typer.Abort):
        sys.exit(ExitCode.INTERRUPTED)
    show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
    if isinstance(exc, typer.TyperException) and callable(show) and isinstance(exit_code, int):
        show()  # a UsageError or BadParameter from the vendored click
        sys.exit(exit_code)
    raise exc


def _wants_traceback() -> bool:
    return bool(os.environ.get("SANDBOX_DEBUG")) or "-v" in sys.argv or "--verbose" in sys.argv
