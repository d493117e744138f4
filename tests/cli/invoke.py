"""`sandbox ARGS` in this process, through the console script's own entry point.

It returns what `subprocess.run([sandbox, ...])` would (exit status, stdout, stderr), so the CLI
tests assert what a user sees, at a fraction of the cost of starting the interpreter again.
The few end-to-end tests that need the real console script (signals, sandboxes) still spawn it.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path
from unittest import mock

from typer.testing import CliRunner

from sandbox.cli import main


def sandbox(
    *args: str, input: str | bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `sandbox` command in-process (in `cwd`); its exit status as `returncode`."""
    handler = signal.getsignal(signal.SIGTERM)
    argv = mock.patch("sys.argv", ["sandbox", *args])
    folder = contextlib.chdir(cwd) if cwd else contextlib.nullcontext()
    with CliRunner().isolation(input=input) as streams, argv, folder:
        try:
            main()
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        finally:
            signal.signal(signal.SIGTERM, handler)
            sys.stdout.flush()  # text written through sys.stdout sits in its wrapper until then
            sys.stderr.flush()
        stdout, stderr = streams[0].getvalue(), streams[1].getvalue()
    return subprocess.CompletedProcess(
        ["sandbox", *args], code, stdout.decode(errors="replace"), stderr.decode(errors="replace")
    )
