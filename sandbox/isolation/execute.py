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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.egress import Capture, EgressEvent
from sandbox.errors import ExecError
from sandbox.isolation import docker
from sandbox.isolation.jail import Bind
from sandbox.isolation.namespace import NamespaceSandbox


@dataclass(frozen=True)
class Share:
    """A host path the command sees at the same path, read-only unless `writable`."""

    path: Path
    writable: bool = False

    def resolved(self) -> str:
        """The absolute path; ExecError when it does not exist."""
        if not self.path.exists():
            raise ExecError(f"{self.path} does not exist.", hint="Give an existing path.")
        return str(self.path.resolve())


@dataclass(frozen=True)
class ExecResult:
    """The command's exit status and what the sandbox saw."""

    returncode: int
    events: list[EgressEvent]
    capture: Capture


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
) -> ExecResult:
    """Run `argv` in `image`, hardened as a model container, inside a fresh sink's namespace."""
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
            returncode = _run_container(sandbox, image, list(argv), timeout_s, shares)
            events, capture = sandbox.take_events()
            return ExecResult(returncode, events, capture)
        finally:
            sandbox.close()


def _run_container(
    sandbox: docker.DockerSandbox,
    image: str,
    argv: list[str],
    timeout_s: float | None,
    shares: Sequence[Share],
) -> int:
    """Run a command in a hardened container in the sandbox; print its output; its status."""
    from docker.types import Mount

    paths = [(s.resolved(), s) for s in shares]
    mounts = [Mount(p, p, type="bind", read_only=not s.writable) for p, s in paths]
    container = sandbox.client.containers.run(
        image,
        command=argv,
        detach=True,
        mounts=[*mounts, *sandbox.etc_mounts()],
        tmpfs={"/tmp": "size=64m"},
        pids_limit=512,
        **docker.hardening(sandbox),
    )
    docker.track(container)
    import requests  # the docker SDK's transport: its wait() time-out is a requests error

    try:
        result = container.wait(timeout=timeout_s)
        return int(result.get("StatusCode", 1))
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
        return 124
    finally:
        _print_log(container)
        docker.remove_container(container)


def _print_log(container: Any) -> None:
    """The container's output, at most docker.MAX_LOG_BYTES of it."""
    shown = 0
    stream = container.logs(stream=True, follow=False)
    for chunk in stream:
        sys.stdout.write(chunk[: docker.MAX_LOG_BYTES - shown].decode(errors="replace"))
        shown += len(chunk)
        if shown >= docker.MAX_LOG_BYTES:
            sys.stdout.write(f"\n[output cut at {docker.MAX_LOG_BYTES >> 20} MiB]\n")
            break
    stream.close()
    sys.stdout.flush()
