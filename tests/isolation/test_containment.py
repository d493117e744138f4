"""Nothing leaves the sandbox: an address the host really has, with a listener behind it, is
reached from inside only as far as the sink. Run for both backends.

The host address is a documentation address (one of 203.0.113.64-127 that no other run holds)
added to the host's loopback for the test and removed after it; the host's real networks are
never probed.
"""

from __future__ import annotations

import json
import os
import random
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
PORT = 8443


def _probe(address: str) -> str:
    return (
        GUARD
        + f"""
for action in (
    lambda: socket.create_connection(("{address}", {PORT}), timeout=3).sendall(b"tcp-leak"),
    lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"udp-leak",
                                                                    ("{address}", {PORT})),
):
    try:
        action()
    except OSError:
        pass
"""
    )


class HostListener:
    """TCP and UDP listeners on the host address that count whatever reaches them."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.tcp = socket.create_server((address, PORT))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((address, PORT))
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


def _claim_address() -> str:
    """Add a documentation address no other run holds to `lo`; `ip` refuses one already there."""
    for last in random.sample(range(64, 128), 64):
        address = f"203.0.113.{last}"
        added = subprocess.run(
            ["ip", "addr", "add", f"{address}/32", "dev", "lo"], capture_output=True, check=False
        )
        if added.returncode == 0:
            return address
    raise AssertionError("every address in 203.0.113.64-127 is held on lo")


@pytest.fixture
def host_listener() -> Iterator[HostListener]:
    if os.geteuid() != 0:
        pytest.skip("adding an address to the host's loopback needs root")
    address = _claim_address()
    try:
        listener = HostListener(address)
        try:
            yield listener
        finally:
            listener.close()
    finally:
        subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", "lo"], check=True)


BACKENDS = [
    pytest.param(
        ["--isolation", "namespace"],
        id="namespace",
        marks=pytest.mark.skipif(
            namespace.unavailable_reason() is not None, reason=str(namespace.unavailable_reason())
        ),
    ),
    pytest.param(
        ["--isolation", "docker", "--image", "localhost/sandbox-base:bookworm"],
        id="docker",
        marks=pytest.mark.docker,
    ),
]


@pytest.mark.sandbox
@pytest.mark.parametrize("backend", BACKENDS)
def test_host_address_is_reached_only_as_far_as_the_sink(
    backend: list[str], host_listener: HostListener
) -> None:
    python = sys.executable if backend[1] == "namespace" else "python3"
    address = host_listener.address
    done = subprocess.run(
        [SANDBOX, "exec", *backend, "--json", "--", python, "-c", _probe(address)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    kinds = sorted(e["kind"] for e in events if e["dst"] == address and e["port"] == PORT)
    assert kinds == ["tcp", "udp"], events
    assert host_listener.seen == []
    # The listener works: the host itself reaches it.
    socket.create_connection((address, PORT), timeout=3).close()
    deadline = time.monotonic() + 3
    while not host_listener.seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_listener.seen and host_listener.seen[0].startswith("tcp")
