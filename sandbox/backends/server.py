"""Model servers: what to run (ServerCommand) and a local process that runs it on a Unix socket.

The sandbox issue adds isolation backends that run the same ServerCommand in a container or a
network namespace; the runner only sees the ModelServer protocol.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sandbox.backends.client import ChatClient
from sandbox.egress import Capture, EgressEvent
from sandbox.errors import ServerStartError

SOCKET_NAME = "model.sock"
NOT_FETCHED = "Not fetched: the model runs without a network sandbox."
# Run inside a sandbox with the URL as argv[1]: what a fetch tool would do, bounded.
FETCH_CODE = (
    "import sys, urllib.request\n"
    "try:\n"
    "    r = urllib.request.urlopen(sys.argv[1], timeout=5)\n"
    "    body = r.read(4096).decode('utf-8', 'replace')\n"
    "    print(f'HTTP {r.status}, {len(body)} characters: {body[:500]}')\n"
    "except Exception as exc:\n"
    "    print(f'fetch failed: {exc}')\n"
)
LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class ServerCommand:
    """How to start a server, wherever it runs: argv, environment and files to write.

    Where it runs decides the places, so argv, env and files name them by token:
    `@python@` (the interpreter with the backend installed), `@socket@` (the Unix socket to
    listen on), `@dir@` (a private folder holding `files`) and `@model@` (the model file).
    """

    argv: list[str]
    env: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)
    model: Path | None = None
    model_name: str = "model"
    start_timeout: float = 120.0
    image: str = ""  # the container image that has the server (docker sandbox)
    gpus: bool = False  # needs GPUs: only the docker sandbox on a GPU host can run it

    def render(self, places: dict[str, str]) -> tuple[list[str], dict[str, str], dict[str, str]]:
        """argv, env and files with every `@token@` replaced by its place."""

        def fill(text: str) -> str:
            for token, place in places.items():
                text = text.replace(f"@{token}@", place)
            return text

        return (
            [fill(a) for a in self.argv],
            {k: fill(v) for k, v in self.env.items()},
            {k: fill(v) for k, v in self.files.items()},
        )


class ModelServer(Protocol):
    """What the runner needs from a served model, wherever it runs."""

    @property
    def client(self) -> ChatClient:
        """A client connected to the server."""

    def start(self) -> None:
        """Start and wait until healthy; ServerStartError with the log tail on failure."""

    def stop(self) -> None:
        """Stop; safe to call twice and on a server that never started."""

    def is_alive(self) -> bool:
        """False once the server process has exited."""

    def describe_exit(self) -> str:
        """A one-line account of why the server is gone, with its log tail."""

    def close(self) -> None:
        """Stop and release everything (sockets, clients)."""

    def take_egress(self) -> list[EgressEvent]:
        """Egress events recorded since the last call (none when nothing observes them)."""

    def capture(self) -> Capture:
        """Whether egress is being observed: complete, incomplete (sink died) or none."""

    def fetch(self, url: str) -> str:
        """Attempt an HTTP GET from inside the server's sandbox (never from outside one)."""


class ProcessServer:
    """Runs a ServerCommand as a local child process listening on a Unix socket."""

    def __init__(self, command: ServerCommand, log_path: Path) -> None:
        self.command = command
        self.log_path = log_path
        self._dir = self._socket_dir()
        self.socket_path = self._connect_path()
        self._process: subprocess.Popen[bytes] | None = None
        self._client = ChatClient.over_socket(self.socket_path, command.model_name)

    @property
    def client(self) -> ChatClient:
        """A client connected over the socket."""
        return self._client

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process else None

    def start(self) -> None:
        """Start the process in its own session and wait for `/v1/models` to answer."""
        self.stop()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv, env = self._materialise()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_healthy()

    def _socket_dir(self) -> Path:
        """A new folder for the socket (a sandbox makes its own)."""
        return Path(tempfile.mkdtemp(prefix="sbx-"))  # short: socket paths max ~107 bytes

    def _connect_path(self) -> Path:
        """Where the client connects (a sandbox pins the socket it checked)."""
        return self._dir / SOCKET_NAME

    def _materialise(self) -> tuple[list[str], dict[str, str]]:
        places = {"python": sys.executable, "socket": str(self.socket_path), "dir": str(self._dir)}
        if self.command.model is not None:
            places["model"] = str(self.command.model)
        argv, env, files = self.command.render(places)
        for name, text in files.items():
            (self._dir / name).write_text(text)
        return [*self.argv_prefix(), *argv], {**_base_env(), **env}

    def _wait_healthy(self) -> None:
        wait_until_healthy(self, self.socket_path, self.command.start_timeout, self.log_path)

    def argv_prefix(self) -> list[str]:
        """What runs the command (a sandbox wraps it); a plain process has none."""
        return []

    def take_egress(self) -> list[EgressEvent]:
        """A plain process is not observed."""
        return []

    def capture(self) -> Capture:
        """A plain process is not observed."""
        return "none"

    def fetch(self, url: str) -> str:
        """Without a sandbox nothing is fetched: the harness never sends traffic out."""
        return NOT_FETCHED

    def is_alive(self) -> bool:
        """True while the child process runs."""
        return self._process is not None and self._process.poll() is None

    def describe_exit(self) -> str:
        """Exit status and the last lines of the server log."""
        code = self._process.poll() if self._process else None
        status = f"exit status {code}" if code is not None else "not running"
        if code is not None and code < 0:
            status = f"killed by {signal.Signals(-code).name}"
        return f"Model server {status}; last log lines:\n{log_tail(self.log_path)}"

    def stop(self) -> None:
        """Terminate the process group, then kill it if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=5)

    def close(self) -> None:
        """Stop the server and remove its socket folder."""
        self.stop()
        self._client.close()
        shutil.rmtree(self._dir, ignore_errors=True)  # never follows a link the server planted


def wait_until_healthy(
    server: ModelServer, socket_path: Path, timeout_s: float, log_path: Path
) -> None:
    """Poll the server's socket until it answers; on exit or time-out, stop it and raise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not server.is_alive():
            raise ServerStartError(
                f"the model server exited during start-up. {server.describe_exit()}",
                hint=f"Full log: {log_path}",
            )
        if socket_path.exists() and server.client.is_healthy():
            return
        time.sleep(0.1)
    detail = server.describe_exit()
    server.stop()
    raise ServerStartError(
        f"the model server did not answer within {timeout_s:g} s. {detail}",
        hint=f"Full log: {log_path}",
    )


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _base_env() -> dict[str, str]:
    """A minimal environment: no proxies or tokens from the user's shell leak into the server."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("PATH", os.path.dirname(sys.executable))
    return env


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, or a note that it is empty."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    tail = text.strip().splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"
