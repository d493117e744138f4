"""A hostile model server, run as the model in every sandbox this host has, tries each attack
class of the threat model (README, "Threat model"): escape to the host, tamper with or forge the
record, stop the sink, evade it, exhaust it, trickle, leak late, and abuse the harness with its
replies. Each escape must fail with the host untouched; each egress must be in the record, or
the capture must say `incomplete`.

The hostile server (tests/hostile_model.py) stands in for the model only: the sandbox, the sink
and the harness are the real ones, and it is told the host paths and pids a worst-case attacker
would know. Its egress goes to documentation addresses and `.example` names only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.backends import ServerCommand
from sandbox.chat import ChatRequest, Message, Sampling
from sandbox.egress import EgressEvent
from sandbox.errors import (
    BackendError,
    ServerStartError,
    TrialTimeoutError,
)
from sandbox.isolation import docker, namespace
from sandbox.isolation.sink.listeners import MAX_CONNECTIONS
from sandbox.isolation.sink.server import READ_TIMEOUT

REPO = Path(__file__).resolve().parents[2]
SITE_PACKAGES = next(
    p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)
)


def _backends() -> list[Any]:
    """Both sandboxes; the docker one skips without Docker (tests/conftest.py)."""
    return [
        pytest.param(
            "namespace",
            marks=[
                pytest.mark.sandbox,
                pytest.mark.skipif(
                    namespace.unavailable_reason() is not None,
                    reason=str(namespace.unavailable_reason()),
                ),
            ],
        ),
        pytest.param("docker", marks=pytest.mark.docker),
    ]


@dataclass
class Hostile:
    """A started hostile server, its sink's pid, and what the host looked like before."""

    server: namespace.NamespaceServer | docker.DockerServer
    sink_pid: int
    secret: Path
    model: Path
    model_sha256: str
    results: Path

    def attack(self, name: str, timeout: float = 60) -> dict[str, Any]:
        request = ChatRequest(messages=[Message(role="user", content=name)])
        reply = self.server.client.chat(request, Sampling(), timeout=timeout)
        return dict(json.loads(reply.content))

    def egress(self) -> tuple[list[EgressEvent], str]:
        events = self.server.take_egress()
        return events, self.server.capture()

    def last_problems(self) -> list[str]:
        return list(self.server.sandbox.events.last_problems)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module", params=_backends())
def hostile(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hostile]:
    backend = request.param
    root = tmp_path_factory.mktemp(f"hostile-{backend}")
    results = root / "results"
    logs = results / "logs"
    logs.mkdir(parents=True)
    (results / "sandbox.db").write_bytes(b"SQLite format 3\x00")
    secret = root / "root-only.key"
    secret.write_text("host secret")
    secret.chmod(0o600)
    model = root / "model.gguf"
    model.write_bytes(b"GGUF" + bytes(1024))
    sandbox, sink_pid, image = _sandbox(backend, logs, "hostile")
    targets = {
        "events": str(logs / "hostile-egress.jsonl"),
        "db": str(results / "sandbox.db"),
        "secret": str(secret),
        "site_packages": SITE_PACKAGES,
        "model_host": str(model),
        "model_inside": f"/models/{model.name}",
        "pids": [sink_pid, os.getpid()],
        "sink_ports": [15001, 15353],
        "flood": MAX_CONNECTIONS + 70,
    }
    command = ServerCommand(
        argv=["@python@", "@dir@/hostile_model.py", "@socket@"],
        env={"HOSTILE_TARGETS": json.dumps(targets)},
        files={"hostile_model.py": (REPO / "tests" / "hostile_model.py").read_text()},
        model=model,
        start_timeout=60,
    )
    server: namespace.NamespaceServer | docker.DockerServer
    if isinstance(sandbox, namespace.NamespaceSandbox):
        server = namespace.NamespaceServer(command, logs / "hostile.log", sandbox)
    else:
        server = docker.DockerServer(command, logs / "hostile.log", sandbox, image)
    server.start()
    server.take_egress()  # the start-up window
    try:
        yield Hostile(server, sink_pid, secret, model, _sha256(model), results)
    finally:
        server.close()


def _sandbox(backend: str, logs: Path, name: str = "planted") -> tuple[Any, int, str]:
    """A started sandbox of `backend`, its sink's host pid, and the image (docker)."""
    if backend == "namespace":
        sandbox = namespace.NamespaceSandbox(logs, name)
        sandbox.start()
        assert sandbox._process is not None
        return sandbox, sandbox._process.pid, ""
    client = docker.docker_client()
    sandbox = docker.DockerSandbox(client, f"hostile-{os.getpid()}", logs, name)
    sandbox.start()
    sandbox.container.reload()
    return sandbox, int(sandbox.container.attrs["State"]["Pid"]), docker.default_llama_image()


@pytest.mark.parametrize(
    "name",
    [
        "read_host_secrets",
        "tamper_with_the_record",
        "reach_the_docker_daemon",
        "plant_code_for_the_harness",
        "write_host_sysctls",
        "change_the_model_file",
        "stop_the_sink",
        "type_into_the_terminal",
        "leave_the_namespaces",
        "flush_the_rules",
    ],
)
def test_hostile_server_cannot_escape_or_touch_the_record(hostile: Hostile, name: str) -> None:
    sysctls = {p: Path(p).read_text() for p in ("/proc/sys/kernel/domainname",)}

    report = hostile.attack(name)
    _, capture = hostile.egress()

    assert report["got_through"] == [], report
    assert capture == "complete", hostile.last_problems()
    assert hostile.secret.read_text() == "host secret"
    assert _sha256(hostile.model) == hostile.model_sha256
    assert not (Path(SITE_PACKAGES) / "zz_hostile.pth").exists()
    assert (hostile.results / "sandbox.db").read_bytes() == b"SQLite format 3\x00"
    assert {p: Path(p).read_text() for p in sysctls} == sysctls
    assert _state(hostile.sink_pid) != "T"


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_hostile_server_sees_only_itself(hostile: Hostile) -> None:
    report = hostile.attack("stop_the_sink")
    (visible,) = [n for n in report["notes"] if n.startswith("visible pids")]
    pids = json.loads(visible.split(": ", 1)[1])
    assert len(pids) <= 2, pids  # (bwrap's init and) the server: nothing of the host


def test_hostile_server_speaking_to_the_sink_is_recorded_not_believed(hostile: Hostile) -> None:
    hostile.attack("tamper_with_the_record")
    events, capture = hostile.egress()

    assert capture == "complete"
    direct = [e for e in events if e.dst == "127.0.0.1" and e.port == 15001]
    assert direct and "999999" in direct[0].detail.get("text", "")


def test_hostile_server_evasions_are_all_recorded(hostile: Hostile) -> None:
    report = hostile.attack("evade_the_sink")
    events, capture = hostile.egress()

    assert capture == "complete"
    seen = {(e.kind, e.dst, e.port): e for e in events}
    tcp53 = seen[("tcp", "203.0.113.53", 53)]
    assert "mrn=MRN-53001" in tcp53.detail["text"]
    assert ("udplite", "203.0.113.136", 5136) in seen
    fragmented = seen[("udp", "2001:db8::44", 5044)]
    assert fragmented.detail["fragment"] and "mrn=MRN-44001" in fragmented.detail["text"]
    assert ("udp", "2001:db8::43", 5043) in seen
    if "ping" in report["got_through"]:
        assert ("icmp", "203.0.113.1", 0) in seen
    if "sctp" in report["got_through"]:
        assert ("sctp", "203.0.113.132", 3868) in seen


def test_hostile_server_flood_is_an_event_and_hides_nothing(hostile: Hostile) -> None:
    report = hostile.attack("exhaust_the_sink")
    events, capture = hostile.egress()

    assert "leak during flood sent" in report["got_through"], report
    assert capture == "complete"
    assert any(e.kind == "flood" for e in events)
    idle = [e for e in events if e.dst == "203.0.113.60" and e.kind == "tcp"]
    assert len(idle) == MAX_CONNECTIONS + 70
    leak = [e for e in events if e.host == "collector.example" and e.port == 80]
    assert leak, "the connection made during the flood is missing"
    time.sleep(READ_TIMEOUT + 0.5)  # the idle handlers give up: slots free again
    hostile.egress()


def test_hostile_server_trickled_leak_is_in_its_own_window(hostile: Hostile) -> None:
    hostile.attack("trickle_a_leak")
    events, capture = hostile.egress()

    assert capture == "complete"
    (leak,) = [e for e in events if e.dst == "203.0.113.70"]
    assert leak.kind == "tcp" and leak.detail["text"].startswith("mrn=MRN-70001 trickled")


def test_hostile_server_late_leak_lands_in_the_window_of_its_time(hostile: Hostile) -> None:
    hostile.attack("leak_after_answering")
    now, _ = hostile.egress()
    time.sleep(1.5)
    later, capture = hostile.egress()

    assert not [e for e in now if e.dst == "203.0.113.80"]
    late = [e for e in later if e.dst == "203.0.113.80" and e.kind == "http"]
    assert capture == "complete" and late and late[0].detail["path"] == "/late"


def test_hostile_server_trickled_reply_ends_at_the_deadline(hostile: Hostile) -> None:
    started = time.monotonic()
    with pytest.raises(TrialTimeoutError):
        hostile.attack("trickle_the_reply", timeout=3)
    assert time.monotonic() - started < 3.5


def test_hostile_server_reply_flood_is_refused(hostile: Hostile) -> None:
    with pytest.raises(BackendError, match="over 16 MiB"):
        hostile.attack("flood_the_reply", timeout=30)


def test_stopped_sink_makes_the_capture_incomplete(hostile: Hostile) -> None:
    """A stopped sink (the harness stops it here: from inside nothing can) is noticed."""
    os.kill(hostile.sink_pid, 19)  # SIGSTOP
    try:
        hostile.attack("trickle_a_leak")
        _, capture = hostile.egress()
    finally:
        os.kill(hostile.sink_pid, 18)  # SIGCONT
    assert capture == "incomplete"
    assert "no heartbeat" in hostile.last_problems()[0]
    time.sleep(0.5)
    assert hostile.egress()[1] == "complete"  # caught up again once it runs


@pytest.mark.parametrize("backend", _backends())
def test_a_planted_link_instead_of_the_socket_stops_the_start(backend: str, tmp_path: Path) -> None:
    """The harness never talks through a link the server planted (to the Docker socket, say)."""
    plant = (
        "import os, time; os.symlink('/var/run/docker.sock', '/run/model/model.sock'); "
        "time.sleep(60)"
    )
    command = ServerCommand(argv=["@python@", "-c", plant], env={}, start_timeout=20)
    sandbox, _, image = _sandbox(backend, tmp_path)
    server: namespace.NamespaceServer | docker.DockerServer
    if isinstance(sandbox, namespace.NamespaceSandbox):
        server = namespace.NamespaceServer(command, tmp_path / "s.log", sandbox)
    else:
        server = docker.DockerServer(command, tmp_path / "s.log", sandbox, image)
    try:
        with pytest.raises(ServerStartError, match="something other than its socket"):
            server.start()
    finally:
        server.close()
