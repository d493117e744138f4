"""Run any command in a fresh sandbox, exactly as a model server would run, and collect egress.

This is how a user checks a server image or a model loader for phone-home behaviour, and how
the tests prove the capture.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from sandbox.errors import ExecError
from sandbox.isolation import docker
from sandbox.isolation.base import ExecResult, Share
from sandbox.isolation.jail import Bind
from sandbox.isolation.namespace import NamespaceSandbox


def execute_in_namespace(
    argv: Sequence[str],
    workdir: Path | None = None,
    timeout_s: float | None = None,
    shares: Sequence[Share] = (),
) -> ExecResult:
    """Run `argv` in a new namespace sandbox's jail; stdin is empty, output goes to ours.

    The jail has its own session, so the command cannot type into the caller's terminal.
    """
    if not argv:
        raise ExecError("no command to run.", hint="Write it after --, e.g. -- curl URL")
    with tempfile.TemporaryDirectory(prefix="sbx-exec-") as tmp:
        sandbox = NamespaceSandbox(workdir or Path(tmp), "exec")
        sandbox.start()
        try:
            binds = tuple(Bind(path, path, s.writable) for s in shares for path in [s.resolved()])
            returncode = _run(sandbox.wrap(binds), argv, timeout_s)
            events, capture = sandbox.take_events()
            return ExecResult(returncode, events, capture)
        finally:
            sandbox.close()


def _run(prefix: list[str], argv: Sequence[str], timeout_s: float | None) -> int:
    try:
        done = subprocess.run(
            [*prefix, *argv], timeout=timeout_s, check=False, stdin=subprocess.DEVNULL
        )
        return done.returncode
    except FileNotFoundError as exc:
        raise ExecError(f"cannot run {argv[0]!r}: {exc.strerror}.") from exc
    except subprocess.TimeoutExpired:
        return 124


def execute_in_docker(
    argv: Sequence[str],
    image: str,
    workdir: Path | None = None,
    timeout_s: float | None = None,
    shares: Sequence[Share] = (),
    out: TextIO = sys.stdout,
) -> ExecResult:
    """Run `argv` in `image`, hardened as a model container, inside a fresh sink's namespace.

    The container's output is copied to `out` once it has ended.
    """
    if not argv:
        raise ExecError("no command to run.", hint="Write it after --, e.g. -- curl URL")
    client = docker.docker_client()
    docker.require_image(client, image)
    with tempfile.TemporaryDirectory(prefix="sbx-exec-") as tmp:
        sandbox = docker.DockerSandbox(
            client, f"exec-{time.time_ns()}", workdir or Path(tmp), "exec"
        )
        sandbox.start()
        try:
            binds = [(share.resolved(), share.writable) for share in shares]
            returncode = docker.run_command(sandbox, image, list(argv), timeout_s, binds, out)
            events, capture = sandbox.take_events()
            return ExecResult(returncode, events, capture)
        finally:
            sandbox.close()
