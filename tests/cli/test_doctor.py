"""`sandbox doctor` tells what this host can sandbox, and fails when `sandbox run` would."""

from __future__ import annotations

import pytest

from sandbox.isolation import namespace
from sandbox.isolation.doctor import Finding, diagnose, would_default_fail
from tests.cli.invoke import sandbox


@pytest.mark.sandbox  # the doctor probes the sandboxes
def test_doctor_reports_every_topic_and_exits_by_the_namespace_verdict() -> None:
    done = sandbox("doctor")
    for topic in ("namespace sandbox", "cgroup", "gpu", "embedded model", "llama.cpp backend"):
        assert topic in done.stdout
    assert "docker" in done.stdout
    expected = 0 if namespace.unavailable_reason() is None else 1
    assert done.returncode == expected, done.stdout + done.stderr


def test_would_default_fail_needs_a_working_sandbox() -> None:
    assert would_default_fail([Finding("namespace sandbox", False, "not root")])
    assert not would_default_fail([Finding("namespace sandbox", True, "")])
    assert would_default_fail([Finding("docker daemon", True, ""), Finding("gpu", True, "")])


@pytest.mark.sandbox
def test_diagnose_matches_the_namespace_probe() -> None:
    [finding] = [f for f in diagnose() if f.topic == "namespace sandbox"]
    assert finding.ok == (namespace.unavailable_reason() is None)
