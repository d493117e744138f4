"""The namespace sandbox, proven with `sandbox exec` as a user runs it: every kind of egress is
captured, nothing leaves, the rules cannot be changed from inside, and a dead sink is noticed.

Probe traffic goes only to documentation addresses (198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32), `.example`/`.invalid` names and the cloud metadata address, and every probe
first checks that it sees no interface but the sandbox's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sandbox.isolation import namespace
from sandbox.isolation.execute import execute_in_namespace
from tests.isolation.probes import GUARD, PROBES

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(
        namespace.unavailable_reason() is not None, reason=str(namespace.unavailable_reason())
    ),
]
SANDBOX = str(Path(sys.executable).parent / "sandbox")


def _exec(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SANDBOX, "exec", "--json", *args], capture_output=True, text=True, timeout=timeout
    )


def _events(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_exec_captures_every_kind_of_egress() -> None:
    done = _exec("--", sys.executable, "-c", PROBES)
    assert done.returncode == 0, done.stderr
    events = _events(done.stdout)
    by_kind = {(e["kind"], e["dst"] or e["detail"]["qname"]) for e in events}  # type: ignore[index]
    http = [e for e in events if e["kind"] == "http" and e["host"] == "collector.example"]
    assert http and http[0]["detail"]["path"] == "/leak"  # type: ignore[index]
    assert http[0]["detail"]["query"] == "mrn=MRN-48213"  # type: ignore[index]
    tls = [e for e in events if e["kind"] == "tls"]
    assert tls and tls[0]["detail"]["sni"] == "stats.vllm.example"  # type: ignore[index]
    assert tls[0]["host"] == "stats.vllm.example"
    assert ("tcp", "203.0.113.9") in by_kind
    assert ("http", "169.254.169.254") in by_kind
    assert ("tcp", "2001:db8::9") in by_kind
    assert ("udp", "198.51.100.7") in by_kind
    assert ("dns", "probe.invalid") in by_kind
    tcp_dns = [e for e in events if e["detail"].get("qname") == "tcp.probe.invalid"]  # type: ignore[union-attr]
    assert tcp_dns and tcp_dns[0]["detail"]["transport"] == "tcp"  # type: ignore[index]
    # Both DNS transports name the resolver the program chose; names it looked up through the
    # system resolver went to the sandbox's own (a documentation address, never the host's).
    resolvers = {e["detail"].get("qname"): e["detail"].get("resolver") for e in events}  # type: ignore[union-attr]
    assert resolvers["probe.invalid"] == resolvers["tcp.probe.invalid"] == "198.51.100.53"
    assert resolvers["collector.example"] == "198.51.100.53"
    assert {("dns", "collector.example"), ("dns", "stats.vllm.example")} <= by_kind


def test_exec_keeps_loopback_working_and_uncaptured() -> None:
    script = GUARD + textwrap.dedent("""
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = socket.create_connection(server.getsockname(), timeout=3)
        conn, _ = server.accept()
        client.sendall(b"ping")
        assert conn.recv(4) == b"ping"
    """)
    done = _exec("--", sys.executable, "-c", script)
    assert done.returncode == 0, done.stderr
    assert _events(done.stdout) == []


def test_exec_command_cannot_change_the_rules_or_the_link() -> None:
    script = GUARD + textwrap.dedent("""
        flush = subprocess.run(["iptables", "-t", "nat", "-F"], capture_output=True)
        down = subprocess.run(["ip", "link", "set", "sbx0", "down"], capture_output=True)
        print(flush.returncode, down.returncode, file=sys.stderr)
        try:
            socket.create_connection(("203.0.113.10", 443), timeout=3).sendall(b"after")
        except OSError:
            pass
    """)
    done = _exec("--", sys.executable, "-c", script)
    assert done.returncode == 0, done.stderr
    flush_code, down_code = map(int, done.stderr.split()[:2])
    assert flush_code != 0 and down_code != 0
    assert any(e["dst"] == "203.0.113.10" for e in _events(done.stdout))


def test_exec_exits_with_the_command_status_and_prints_people_lines() -> None:
    done = subprocess.run(
        [SANDBOX, "exec", "--", sys.executable, "-c", GUARD + "sys.exit(7)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 7
    assert "No egress attempts." in done.stdout


def test_namespace_sandbox_fails_closed_when_the_sink_dies(tmp_path: Path) -> None:
    sandbox = namespace.NamespaceSandbox(tmp_path, "t")
    sandbox.start()
    try:
        assert sandbox.is_capturing()
        sink = sandbox._process  # the sink process; killing it simulates a crash
        assert sink is not None
        sink.kill()
        sink.wait(timeout=5)
        assert not sandbox.is_capturing()
        script = GUARD + textwrap.dedent("""
            try:
                socket.create_connection(("203.0.113.9", 443), timeout=3)
            except OSError as exc:
                sys.exit(0)
            sys.exit("connected with the sink dead")
        """)
        done = subprocess.run(
            [*sandbox.wrap(), sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
    finally:
        sandbox.close()


def test_execute_in_namespace_reports_events_and_status() -> None:
    script = (
        GUARD
        + "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('198.51.100.8', 53535))"
    )
    result = execute_in_namespace([sys.executable, "-c", script])
    assert result.returncode == 0
    assert result.capture == "complete"
    assert [(e.kind, e.dst, e.port) for e in result.events] == [("udp", "198.51.100.8", 53535)]
