"""The folder a sandboxed server creates its Unix socket in, which the harness then connects to.

The server is hostile by assumption, so the folder is made fresh for every start, owned by the
server's uid with mode 0700, and (as root) a 1 MiB tmpfs, so writing to it cannot fill the
host's disk. Once the socket appears, the harness checks that it is a socket the server owns
and pins that inode with a file descriptor: it connects through `/proc/self/fd/N`, never
through the name, so a server that later swaps the socket for a link to another one (the
Docker daemon's, say) cannot make the harness talk to it. As root the folder is also locked
(root's, 0755). Nothing is written or changed through a path inside it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from sandbox.errors import ServerStartError

SOCKET_NAME = "model.sock"
TMPFS_SIZE = "1m"


class SocketFolder:
    """A per-server socket folder on the host."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="sbx-"))  # short: socket paths max ~107 bytes
        self.socket_path = self.path / SOCKET_NAME
        self._mounted = False
        self._pin = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)  # the socket, once made
        self.connect_path = Path(f"/proc/self/fd/{self._pin}")

    def _pin_to(self, path: str, flags: int) -> int:
        fd = os.open(path, flags | os.O_CLOEXEC)
        os.dup2(fd, self._pin, inheritable=False)
        os.close(fd)
        return self._pin

    def renew(self, uid: int) -> None:
        """Empty the folder (what a previous server left there) and hand it to `uid`."""
        self._pin_to("/dev/null", os.O_RDONLY)  # the previous server's socket is not this one's
        self._unmount()
        shutil.rmtree(self.path, ignore_errors=True)  # never follows a link
        self.path.mkdir(mode=0o700)
        if os.geteuid() == 0:
            options = f"size={TMPFS_SIZE},mode=0700,uid={uid},gid={uid},nosuid,nodev,noexec"
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "sbx-socket", str(self.path)],
                capture_output=True,
                check=False,
            )
            self._mounted = done.returncode == 0
        if not self._mounted and uid != os.getuid():
            try:
                os.chown(self.path, uid, uid)
            except PermissionError:  # a docker user who is not root: the server must write here,
                os.chmod(self.path, 0o777)  # and the harness never writes through it

    def is_ready(self, uid: int) -> bool:
        """False until the socket exists; then check that it is `uid`'s, and pin it."""
        try:
            first = os.lstat(self.socket_path)
        except FileNotFoundError:
            return False
        if os.geteuid() == 0:
            os.chown(self.path, 0, 0)
            os.chmod(self.path, 0o755)
        try:
            pinned = os.fstat(self._pin_to(str(self.socket_path), os.O_PATH | os.O_NOFOLLOW))
        except OSError:
            pinned = first
        if (
            not stat.S_ISSOCK(pinned.st_mode)
            or pinned.st_uid != uid
            or pinned.st_ino != first.st_ino
        ):
            self._pin_to("/dev/null", os.O_RDONLY)
            raise ServerStartError(
                f"the model server put something other than its socket at {self.socket_path}.",
                hint="The server is hostile or broken; read its log.",
            )
        return True

    def wait(self, server: Any, uid: int, timeout_s: float) -> None:
        """Wait until `server` made its socket (or died, or time ran out); stop it if it cheated."""
        give_up = time.monotonic() + timeout_s
        try:
            while not self.is_ready(uid):
                if not server.is_alive() or time.monotonic() > give_up:
                    return
                time.sleep(0.05)
        except ServerStartError:
            server.stop()
            raise

    def _unmount(self) -> None:
        if self._mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)
            self._mounted = False

    def remove(self) -> None:
        """Unmount and delete the folder; let go of the pinned socket."""
        self._unmount()
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._pin)


def write_private(path: Path, text: str) -> None:
    """Write a root-owned, world-readable file without following a link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
