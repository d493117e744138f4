"""A throwaway PostgreSQL server for tests, started from Debian's ``postgresql`` binaries.

It listens only on a Unix socket in a private folder, so nothing touches the network.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

PG_ROOT = Path("/usr/lib/postgresql")
DB_USER = "sandbox"
DB_NAME = "postgres"
SERVICE_USER = "postgres"
# sun_path holds 108 bytes with the NUL; the server appends "/.s.PGSQL.5432" to the folder.
MAX_SOCKET_PATH = 107
SOCKET_NAME = ".s.PGSQL.5432"
COMMAND_TIMEOUT_S = 90
LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class _Layout:
    """Where one throwaway cluster keeps its files."""

    data: Path
    socket: Path
    log: Path
    cwd: Path


def find_pg_bin() -> Path | None:
    """Find the newest PostgreSQL server bin folder that Debian's packages installed.

    Returns:
        The ``/usr/lib/postgresql/<version>/bin`` folder holding ``initdb`` and ``pg_ctl``
        with the highest version, or None when no such folder exists.
    """
    candidates = [
        path
        for path in PG_ROOT.glob("*/bin")
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file()
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda path: _version_key(path.parent.name))


def _version_key(name: str) -> tuple[int, ...]:
    """Turn a folder name like ``15`` or ``9.6`` into a sortable version tuple."""
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (-1,)


def is_root() -> bool:
    """Say whether this process runs as root, where initdb must run as another user."""
    return os.geteuid() == 0


@contextmanager
def temporary_postgres(base: Path) -> Iterator[str]:
    """Run a private PostgreSQL server for the length of the ``with`` block.

    As root the cluster lives in a fresh ``/tmp/sbxpg-*`` folder owned by the ``postgres``
    user (``base`` may sit under a mode-700 folder it cannot enter), and its log is copied to
    ``base/postgres.log`` at the end. Otherwise it lives under ``base``.

    Args:
        base: A scratch folder the caller owns, such as pytest's ``tmp_path``.

    Yields:
        A SQLAlchemy URL (psycopg 3 driver) for the ``postgres`` database as user ``sandbox``.

    Raises:
        RuntimeError: The binaries are missing, or initdb or the server failed to start.
    """
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise RuntimeError(
            f"no PostgreSQL server binaries under {PG_ROOT}/*/bin. "
            "Install Debian's postgresql package."
        )
    layout_cm = _root_layout(base) if is_root() else _user_layout(base)
    with layout_cm as layout:
        _init_cluster(bin_dir, layout)
        try:
            _start_server(bin_dir, layout)
            yield _url(layout.socket)
        finally:
            _stop_server(bin_dir, layout)


@contextmanager
def _root_layout(base: Path) -> Iterator[_Layout]:
    """Lay out a cluster in a fresh /tmp folder the ``postgres`` user can reach, then remove it."""
    top = Path(tempfile.mkdtemp(prefix="sbxpg-"))
    try:
        top.chmod(0o755)
        layout = _Layout(data=top / "data", socket=top / "socket", log=top / "server.log", cwd=top)
        layout.data.mkdir()
        layout.socket.mkdir()
        layout.log.touch()
        for path in (layout.data, layout.socket, layout.log):
            shutil.chown(path, user=SERVICE_USER, group=SERVICE_USER)
        yield layout
    finally:
        _copy_log(top / "server.log", base / "postgres.log")
        shutil.rmtree(top, ignore_errors=True)


@contextmanager
def _user_layout(base: Path) -> Iterator[_Layout]:
    """Lay out a cluster under ``base``, with the socket in /tmp when ``base`` is too deep."""
    top = Path(tempfile.mkdtemp(prefix="pg-", dir=base))
    socket = top / "socket"
    short_socket = None
    if len(os.fsencode(socket / SOCKET_NAME)) > MAX_SOCKET_PATH:
        short_socket = Path(tempfile.mkdtemp(prefix="sbxpg-"))
        socket = short_socket
    else:
        socket.mkdir()
    try:
        yield _Layout(data=top / "data", socket=socket, log=top / "server.log", cwd=top)
    finally:
        if short_socket is not None:
            shutil.rmtree(short_socket, ignore_errors=True)


def _copy_log(source: Path, target: Path) -> None:
    """Keep the server log beside the caller's files for debugging; a failed copy is harmless."""
    try:
        shutil.copyfile(source, target)
    except OSError:
        pass


def _run(bin_dir: Path, layout: _Layout, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one PostgreSQL tool, as the ``postgres`` user when we are root."""
    command = [str(bin_dir / tool), *args]
    if is_root():
        command = ["runuser", "-u", SERVICE_USER, "--", *command]
    # The cwd matters: as root ours may be /root, which the postgres user cannot enter.
    return subprocess.run(
        command,
        cwd=layout.cwd,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


def _init_cluster(bin_dir: Path, layout: _Layout) -> None:
    """Create an empty cluster whose superuser is ``sandbox``, trusted without a password."""
    # UTF8 and the C locale so the result does not depend on this machine's LANG.
    result = _run(
        bin_dir, layout, "initdb", "-A", "trust", "-U", DB_USER, "-E", "UTF8",
        "--locale=C", "--no-sync", "-D", str(layout.data),
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed ({result.returncode}): {result.stderr.strip()}")


def _start_server(bin_dir: Path, layout: _Layout) -> None:
    """Start the server on a Unix socket only and wait until it accepts connections."""
    # pg_ctl hands these to /bin/sh, so the folder is quoted in case it holds spaces.
    options = (
        f"-k {shlex.quote(str(layout.socket))} "
        "-c listen_addresses='' -c fsync=off -c full_page_writes=off"
    )
    result = _run(
        bin_dir, layout, "pg_ctl", "-D", str(layout.data), "-o", options,
        "-w", "-t", "60", "-l", str(layout.log), "start",
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(
            f"PostgreSQL failed to start ({result.returncode}): {result.stderr.strip()}\n"
            f"--- end of the server log ---\n{_log_tail(layout.log)}"
        )


def _log_tail(log: Path) -> str:
    """Return the last lines of the server log, or a note when it cannot be read."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _stop_server(bin_dir: Path, layout: _Layout) -> None:
    """Stop the server at once; kill the postmaster if pg_ctl could not."""
    pid_file = layout.data / "postmaster.pid"
    if not pid_file.exists():
        return
    try:
        _run(bin_dir, layout, "pg_ctl", "-D", str(layout.data), "-m", "immediate", "-w", "stop")
    except subprocess.TimeoutExpired:
        pass
    if pid_file.exists():
        _kill_postmaster(pid_file)


def _kill_postmaster(pid_file: Path) -> None:
    """Kill the postmaster named in ``postmaster.pid``; its children exit when it dies."""
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


def _url(socket: Path) -> str:
    """Build the SQLAlchemy URL that reaches the server through its socket folder."""
    return f"postgresql+psycopg://{DB_USER}@/{DB_NAME}?host={quote(str(socket), safe='/')}"
