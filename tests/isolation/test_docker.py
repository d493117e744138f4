"""The docker sandbox, end to end with the real daemon and the images from `make images`.

Skipped (with the reason) when no daemon answers or the images are missing, unless
SANDBOX_REQUIRE_DOCKER=1 (as `.ci/run` sets), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.isolation import docker
from tests.helpers import SCENARIOS
from tests.isolation.probes import GUARD, PROBES

SANDBOX = str(Path(sys.executable).parent / "sandbox")
BASE = "localhost/sandbox-base:bookworm"


pytestmark = pytest.mark.docker  # skipped without Docker (tests/conftest.py: docker_present)


def _leftovers() -> list[str]:
    done = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={docker.RUN_LABEL}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def _exec(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [SANDBOX, "exec", "--isolation", "docker", "--image", BASE, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_docker_exec_captures_every_kind_of_egress() -> None:
    done = _exec("--json", "--", "python3", "-c", PROBES)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    seen = {(e["kind"], e["dst"] or e["detail"].get("qname")) for e in events}
    assert ("http", "198.18.0.1") in seen or any(e["host"] == "collector.example" for e in events)
    assert any(e["kind"] == "tls" and e["detail"]["sni"] == "stats.vllm.example" for e in events)
    for expected in [
        ("tcp", "203.0.113.9"),
        ("http", "169.254.169.254"),
        ("tcp", "2001:db8::9"),
        ("udp", "198.51.100.7"),
        ("dns", "probe.invalid"),
    ]:
        assert expected in seen, (expected, seen)
    tcp_dns = [e for e in events if e["detail"].get("qname") == "tcp.probe.invalid"]
    assert tcp_dns and tcp_dns[0]["detail"]["transport"] == "tcp"
    # Both DNS transports name the resolver the program chose; names it looked up through the
    # system resolver went to the sandbox's own (a documentation address, never the host's).
    resolvers = {e["detail"].get("qname"): e["detail"].get("resolver") for e in events}  # type: ignore[union-attr]
    assert resolvers["probe.invalid"] == resolvers["tcp.probe.invalid"] == "198.51.100.53"
    assert resolvers["collector.example"] == "198.51.100.53"
    assert _leftovers() == []


def test_docker_exec_container_is_unprivileged_read_only_and_cannot_touch_rules() -> None:
    script = (
        GUARD
        + """
import os
status = open("/proc/self/status").read()
cap_eff = [line for line in status.splitlines() if line.startswith("CapEff")][0].split()[1]
flush = subprocess.run(["iptables", "-t", "nat", "-F"], capture_output=True).returncode
try:
    open("/etc/written", "w")
    writable = True
except OSError:
    writable = False
print(os.getuid(), cap_eff, flush, writable)
"""
    )
    done = _exec("--", "python3", "-c", script)
    assert done.returncode == 0, done.stderr
    uid, cap_eff, flush, writable = done.stdout.split()[:4]
    assert (uid, int(cap_eff, 16), writable) == ("65534", 0, "False")
    assert flush != "0"


def test_docker_exec_exits_with_the_command_status() -> None:
    done = _exec("--", "sh", "-c", "exit 5")
    assert done.returncode == 5
    assert "No egress attempts." in done.stdout


@pytest.mark.slow
@pytest.mark.usefixtures("embedded_env")
def test_run_in_docker_sandbox_scores_and_leaves_no_container(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    scenario = SCENARIOS / "document-injection" / "dictation-omit-nodule.yaml"
    done = subprocess.run(
        [
            SANDBOX,
            "run",
            str(scenario),
            "--isolation",
            "docker",
            "--max-tokens",
            "16",
            "--db",
            f"sqlite:///{db}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "Egress (docker sandbox): 0 attempt(s) at server start-up, 0 during trials, "
        "0 after the last trial." in done.stdout
    )
    with sqlite3.connect(db) as connection:
        assert connection.execute("select isolation from runs").fetchall() == [("docker",)]
        captures = connection.execute("select capture, status from trials").fetchall()
        [(image_id,)] = connection.execute("select image_id from models").fetchall()
        [(options,)] = connection.execute("select options_json from runs").fetchall()
    assert image_id.startswith("sha256:")
    assert json.loads(options)["sink_image_id"].startswith("sha256:")
    assert captures == [("complete", "ok"), ("complete", "ok")]
    assert _leftovers() == []


@pytest.mark.slow
@pytest.mark.usefixtures("embedded_env")
def test_run_in_docker_interrupted_removes_its_containers(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            SANDBOX,
            "run",
            str(SCENARIOS),
            "--isolation",
            "docker",
            "--max-tokens",
            "64",
            "--db",
            f"sqlite:///{tmp_path / 'i.db'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(_leftovers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_leftovers()) == 2  # the sink and the model server
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 130, out
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert _leftovers() == []


def test_cleanup_removes_containers_of_dead_runs() -> None:
    client = docker.docker_client()
    dead_owner = {docker.RUN_LABEL: "dead-run", docker.OWNER_LABEL: "999999999"}
    container = client.containers.create(
        BASE, command=["true"], labels=dead_owner, network_mode="none"
    )
    try:
        done = subprocess.run([SANDBOX, "cleanup"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert container.name in done.stdout
        assert container.id[:12] not in _leftovers()
    finally:
        docker.remove_container(container)
        client.close()
