"""The `namespace` sandbox: the DESIGN.md §4.1 recipe without Docker, as root or rootless.

The sink runs in a new network namespace (`unshare --net`; rootless, inside a new user namespace
where the caller is uid 0) and builds the dead-end link and the NAT rules there. Programs join
that namespace inside a jail (`jail.py`: bubblewrap, seccomp, no capabilities; as root also the
jail's own uid and cgroup limits), so they can neither change the rules nor see the sink's
files, the results or the host. The model server is reached over a Unix socket the harness
checked and pinned (`sockets.py`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandbox.backends.server import FETCH_CODE, ProcessServer, ServerCommand, log_tail
from sandbox.egress import Capture, EgressEvent
from sandbox.errors import SandboxStartError
from sandbox.isolation import cgroups, jail, seccomp
from sandbox.isolation.events import READY_TIMEOUT, EventFile, WindowedEgress
from sandbox.isolation.sockets import SocketFolder, write_private

TOOLS = ("unshare", "nsenter", "setpriv", "ip", "iptables-restore", "bwrap")
IN_JAIL = {"python": sys.executable, "socket": "/run/model/model.sock", "dir": "/run/config"}


def missing_tools() -> list[str]:
    """The commands this backend needs that are not installed."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def is_rootless() -> bool:
    """True when this process is not root: the sandbox then lives in a user namespace."""
    return os.geteuid() != 0


def unavailable_reason() -> str | None:
    """Why this backend cannot run here, or None when it can (as root, or rootless)."""
    missing = missing_tools()
    if missing:
        return (
            f"missing commands: {', '.join(missing)} "
            "(Debian: util-linux iproute2 iptables bubblewrap)"
        )
    if is_rootless() and not _has_user_namespaces():
        return (
            "not root, and this kernel does not let unprivileged users create user namespaces "
            "(rootless mode needs them: sysctl kernel.unprivileged_userns_clone=1, or "
            "user.max_user_namespaces > 0)"
        )
    return None


def _has_user_namespaces() -> bool:
    probe = ["unshare", "--user", "--map-root-user", "--net", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


class NamespaceSandbox:
    """One network namespace with its sink; programs join it through `wrap()`."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        limits: cgroups.Limits | None = None,
        rootless: bool | None = None,
    ) -> None:
        self.events_path = workdir / f"{name}-egress.jsonl"
        self.ready_path = workdir / f"{name}-sink.ready"
        self.log_path = workdir / f"{name}-sink.log"
        self.name, self.limits = name, limits or cgroups.Limits()
        self.rootless = is_rootless() if rootless is None else rootless
        # Rootful: the jail's own uid. Rootless: uid 0 of the sink's user namespace, which is
        # the caller's uid on the host (an unprivileged user has no other to give).
        self.uid = os.getuid() if self.rootless else jail.new_uid()
        self._process: subprocess.Popen[bytes] | None = None
        self._netns_fd: int | None = None  # holds the namespace even if the sink dies
        self._userns_fd: int | None = None  # rootless: the user namespace that owns it
        self.events = EventFile(self.events_path)
        self._private: Path | None = None  # root-only: the seccomp program and /etc files
        self.cgroups: cgroups.CgroupSet | None = None

    def start(self) -> None:
        """Start the sink in a new namespace and wait until it says the rules are in place.

        A sandbox whose sink died is not restarted: its capture stays incomplete.
        """
        if self._netns_fd is not None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.ready_path.unlink(missing_ok=True)
        self._prepare_jail()
        userns = ["--user", "--map-root-user"] if self.rootless else []
        argv = [
            "unshare",
            *userns,
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
                if self.rootless:
                    self._userns_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY)
                return
            if not self.is_capturing():
                break
            time.sleep(0.05)
        self.close()
        raise SandboxStartError(
            f"the egress sink did not become ready.\n{log_tail(self.log_path)}",
            hint="Run `sandbox doctor` to see what this machine supports.",
        )

    def _prepare_jail(self) -> None:
        private = Path(tempfile.mkdtemp(prefix="sbx-jail-"))  # 0700, root's
        self._private = private
        seccomp.write_filter(private / "seccomp.bpf")
        jail.write_etc(private / "etc", 0 if self.rootless else self.uid)
        name = f"sandbox-{os.getpid()}-{self.name}-{self.uid}"
        self.cgroups = cgroups.CgroupSet(name, self.limits)
        if not self.rootless:  # an unprivileged user cannot make cgroups here
            self.cgroups.create()

    def wrap(
        self, binds: tuple[jail.Bind, ...] = (), env: dict[str, str] | None = None
    ) -> list[str]:
        """The prefix that runs a command in this sandbox's jail, seeing only `binds`."""
        assert self._netns_fd is not None and self._private is not None, "start the sandbox first"
        assert self.cgroups is not None
        for bind in (*jail.python_binds(), *binds):
            if _is_within(self.events_path, bind.source):
                raise SandboxStartError(
                    f"{bind.source} would show the sandbox its own egress log "
                    f"({self.events_path}).",
                    hint="Keep --results (the log folder) outside the Python environment and "
                    "the model's folder.",
                )
        userns = f"/proc/{os.getpid()}/fd/{self._userns_fd}" if self._userns_fd else ""
        spec = jail.JailSpec(
            uid=None if self.rootless else self.uid,
            netns=f"/proc/{os.getpid()}/fd/{self._netns_fd}",
            userns=userns,
            seccomp=str(self._private / "seccomp.bpf"),
            etc=str(self._private / "etc"),
            cgroup_procs=tuple(self.cgroups.procs_files()),
            binds=binds,
            env=env or {},
        )
        return jail.jail_argv(spec, [])

    def is_capturing(self) -> bool:
        """True while the sink runs (if it died, the rules stay and nothing leaves)."""
        return self._process is not None and self._process.poll() is None

    def take_events(self, until: float | None = None) -> tuple[list[EgressEvent], Capture]:
        """Events up to `until` (default now), and whether the sink's record of them is whole."""
        return self.events.take(until, self.is_capturing)

    def close(self) -> None:
        """Stop the sink, kill what is left in the jail's cgroups, let go of the namespace."""
        if self.cgroups is not None:
            self.cgroups.close()
            self.cgroups = None
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None
        for fd in (self._netns_fd, self._userns_fd):
            if fd is not None:
                os.close(fd)
        self._netns_fd = self._userns_fd = None
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


def _is_within(path: Path, folder: str) -> bool:
    return path.resolve().is_relative_to(Path(folder).resolve())


class NamespaceServer(WindowedEgress, ProcessServer):
    """A model server inside a namespace sandbox's jail; the sandbox outlives server restarts."""

    sandbox: NamespaceSandbox

    def __init__(self, command: ServerCommand, log_path: Path, sandbox: NamespaceSandbox) -> None:
        self._sockets = SocketFolder()
        super().__init__(command, log_path)
        self.sandbox = sandbox
        self._config = Path(tempfile.mkdtemp(prefix="sbx-conf-"))
        self._config.chmod(0o755)  # root's; the jail reads it, never writes it

    def start(self) -> None:
        """Start the sandbox (once), then the server inside it."""
        self.sandbox.start()
        super().start()

    def _materialise(self) -> tuple[list[str], dict[str, str]]:
        """A fresh socket folder owned by the jail's uid; config and model read-only."""
        self._sockets.renew(self.sandbox.uid)
        places = dict(IN_JAIL)
        binds = [
            jail.Bind(str(self._dir), "/run/model", True),
            jail.Bind(str(self._config), "/run/config"),
        ]
        if self.command.model is not None:
            places["model"] = f"/models/{self.command.model.name}"
            binds.append(jail.Bind(str(self.command.model.resolve()), places["model"]))
        argv, env, files = self.command.render(places)
        for name, text in files.items():
            write_private(self._config / name, text)
        prefix = self.sandbox.wrap(tuple(binds), env)
        return [*prefix, *argv], {"PATH": os.environ.get("PATH", "")}

    def _wait_healthy(self) -> None:
        """Wait for the socket (locking its folder), then for the server to answer."""
        self._sockets.wait(self, self.sandbox.uid, self.command.start_timeout)
        super()._wait_healthy()

    def fetch(self, url: str) -> str:
        """An HTTP GET from inside the jail; the sink records it."""
        argv = [*self.sandbox.wrap(), sys.executable, "-c", FETCH_CODE, url]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return "fetch failed: timed out"
        return done.stdout.strip()[-600:] or done.stderr.strip()[-300:]

    def _socket_dir(self) -> Path:
        return self._sockets.path

    def _connect_path(self) -> Path:
        return self._sockets.connect_path

    def close(self) -> None:
        """Stop the server, then the sandbox."""
        super().close()
        self._sockets.remove()
        shutil.rmtree(self._config, ignore_errors=True)
        self.sandbox.close()
