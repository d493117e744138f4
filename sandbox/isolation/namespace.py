"""The `namespace` sandbox: the DESIGN.md §4.1 recipe without Docker, for Linux hosts as root.

The sink runs in a new network namespace (`unshare --net`) and builds the dead-end link and the
NAT rules there; the model server joins that namespace (`nsenter`) with every capability dropped
(`setpriv`), so it cannot change the rules, and it is reached over a Unix socket on the shared
filesystem.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sandbox.backends.server import FETCH_CODE, ProcessServer, ServerCommand, log_tail
from sandbox.egress import Capture, EgressEvent
from sandbox.errors import SandboxStartError
from sandbox.isolation.events import READY_TIMEOUT, EventFile

TOOLS = ("unshare", "nsenter", "setpriv", "ip", "iptables-restore")


def missing_tools() -> list[str]:
    """The commands this backend needs that are not installed."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def unavailable_reason() -> str | None:
    """Why this backend cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the namespace sandbox needs root (it creates a network namespace and NAT rules)"
    missing = missing_tools()
    if missing:
        return f"missing commands: {', '.join(missing)} (Debian: util-linux iproute2 iptables)"
    return None


class NamespaceSandbox:
    """One network namespace with its sink; programs join it through `wrap()`."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.events_path = workdir / f"{name}-egress.jsonl"
        self.ready_path = workdir / f"{name}-sink.ready"
        self.log_path = workdir / f"{name}-sink.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._netns_fd: int | None = None  # holds the namespace even if the sink dies
        self._events = EventFile(self.events_path)

    def start(self) -> None:
        """Start the sink in a new namespace and wait until it says the rules are in place.

        A sandbox whose sink died is not restarted: its capture stays incomplete.
        """
        if self._netns_fd is not None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.ready_path.unlink(missing_ok=True)
        argv = [
            "unshare",
            "--net",
            "--",
            sys.executable,
            "-m",
            "sandbox.isolation.sink",
            "--events",
            str(self.events_path),
            "--ready",
            str(self.ready_path),
            "--setup-network",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONPATH": _package_root()},
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.ready_path.exists():
                pid = json.loads(self.ready_path.read_text())["pid"]
                self._netns_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
                return
            if not self.is_capturing():
                break
            time.sleep(0.05)
        self.close()
        raise SandboxStartError(
            f"the egress sink did not become ready.\n{log_tail(self.log_path)}",
            hint="Run `sandbox doctor` to see what this machine supports.",
        )

    def wrap(self) -> list[str]:
        """The prefix that runs a command inside the namespace without capabilities."""
        assert self._netns_fd is not None, "start the sandbox first"
        return [
            "nsenter",
            f"--net=/proc/{os.getpid()}/fd/{self._netns_fd}",
            "--",
            "setpriv",
            "--bounding-set=-all",
            "--inh-caps=-all",
            "--no-new-privs",
            "--",
        ]

    def is_capturing(self) -> bool:
        """True while the sink runs (if it died, the rules stay and nothing leaves)."""
        return self._process is not None and self._process.poll() is None

    def take_events(self) -> list[EgressEvent]:
        """Events recorded since the last call."""
        return self._events.take()

    def close(self) -> None:
        """Stop the sink and let go of the namespace; it disappears with its last process."""
        if self._netns_fd is not None:
            os.close(self._netns_fd)
            self._netns_fd = None
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _package_root() -> str:
    """The folder that holds the `sandbox` package, for the sink's interpreter."""
    return str(Path(__file__).resolve().parents[2])


class NamespaceServer(ProcessServer):
    """A model server inside a namespace sandbox; the sandbox outlives server restarts."""

    def __init__(self, command: ServerCommand, log_path: Path, sandbox: NamespaceSandbox) -> None:
        super().__init__(command, log_path)
        self.sandbox = sandbox

    def start(self) -> None:
        """Start the sandbox (once), then the server inside it."""
        self.sandbox.start()
        super().start()

    def argv_prefix(self) -> list[str]:
        """Join the sandbox's namespace with no capabilities."""
        return self.sandbox.wrap()

    def take_egress(self) -> list[EgressEvent]:
        """What the sink recorded since the last call."""
        return self.sandbox.take_events()

    def capture(self) -> Capture:
        """Complete while the sink runs; incomplete once it died."""
        return "complete" if self.sandbox.is_capturing() else "incomplete"

    def fetch(self, url: str) -> str:
        """An HTTP GET from inside the namespace, without capabilities; the sink records it."""
        argv = [*self.sandbox.wrap(), sys.executable, "-c", FETCH_CODE, url]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            return "fetch failed: timed out"
        return done.stdout.strip() or done.stderr.strip()[-300:]

    def close(self) -> None:
        """Stop the server, then the sandbox."""
        super().close()
        self.sandbox.close()
