"""Nothing leaves the sandbox: an address the host really has, with a listener behind it, is
reached from inside only as far as the sink. Run for both backends.

The host address is a documentation address (203.0.113.77) added to the host's loopback for
the test and removed after it; the host's real networks are never probed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.isolation import namespace
from tests.isolation.probes import GUARD

SANDBOX = str(Path(sys.executable).parent / "sandbox")
HOST_ADDRESS, PORT = "203.0.113.77", 8443
PROBE = (
    GUARD
    + f"""
for action in (
    lambda: socket.create_connection(("{HOST_ADDRESS}", {PORT}), timeout=3).sendall(b"tcp-leak"),
    lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"udp-leak",
                                                                    ("{HOST_ADDRESS}", {PORT})),
):
    try:
        action()
    except OSError:
        pass
"""
)


class HostListener:
    """TCP and UDP listeners on the host address that count whatever reaches them."""

    def __init__(self) -> None:
        self.tcp = socket.create_server((HOST_ADDRESS, PORT))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((HOST_ADDRESS, PORT))
        self.udp.settimeout(0.2)
        self.tcp.settimeout(0.2)
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            for listener in (self.tcp, self.udp):
                try:
                    if listener is self.tcp:
                        conn, peer = listener.accept()
                        conn.close()
                        self.seen.append(f"tcp from {peer}")
                    else:
                        _, peer = listener.recvfrom(100)
                        self.seen.append(f"udp from {peer}")
                except TimeoutError:
                    continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.tcp.close()
        self.udp.close()


@pytest.fixture
def host_listener() -> Iterator[HostListener]:
    if os.geteuid() != 0:
        pytest.skip("adding an address to the host's loopback needs root")
    subprocess.run(["ip", "addr", "add", f"{HOST_ADDRESS}/32", "dev", "lo"], check=True)
    listener = HostListener()
    try:
        yield listener
    finally:
        listener.close()
        subprocess.run(["ip", "addr", "del", f"{HOST_ADDRESS}/32", "dev", "lo"], check=True)


def _backends() -> list[list[str]]:
    backends = []
    if namespace.unavailable_reason() is None:
        backends.append(["--isolation", "namespace"])
    images = subprocess.run(
        ["docker", "image", "inspect", "localhost/sandbox-base:bookworm"],
        capture_output=True,
        check=False,
    )
    if images.returncode == 0:
        backends.append(["--isolation", "docker", "--image", "localhost/sandbox-base:bookworm"])
    return backends


@pytest.mark.parametrize("backend", _backends(), ids=lambda b: b[1])
def test_host_address_is_reached_only_as_far_as_the_sink(
    backend: list[str], host_listener: HostListener
) -> None:
    python = sys.executable if backend[1] == "namespace" else "python3"
    done = subprocess.run(
        [SANDBOX, "exec", *backend, "--json", "--", python, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    kinds = sorted(e["kind"] for e in events if e["dst"] == HOST_ADDRESS and e["port"] == PORT)
    assert kinds == ["tcp", "udp"], events
    assert host_listener.seen == []
    # The listener works: the host itself reaches it.
    socket.create_connection((HOST_ADDRESS, PORT), timeout=3).close()
    deadline = time.monotonic() + 3
    while not host_listener.seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_listener.seen and host_listener.seen[0].startswith("tcp")
