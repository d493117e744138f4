"""`sandbox run` end to end with the real embedded model served by llama-cpp-python.

These run the installed console script in a subprocess, as a user would, against the bundled
scenarios, and read the SQLite results database it writes.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.backends.embedded import embedded_model
from sandbox.backends.templates.hostile import HOSTILE
from sandbox.backends.templates.repackage import with_template
from sandbox.isolation import namespace
from tests.helpers import SCENARIOS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.sandbox,
    pytest.mark.usefixtures("embedded_env"),
    pytest.mark.skipif(
        namespace.unavailable_reason() is not None, reason=str(namespace.unavailable_reason())
    ),
]
SANDBOX = Path(sys.executable).parent / "sandbox"
# The namespace sandbox: the server is a child process these tests can find and kill.
FAST = ["--max-tokens", "32", "--timeout", "120", "--isolation", "namespace"]
# Three scenarios (six trials) keep these runs short while the library grows.
SUBSET = [
    SCENARIOS / "document-injection" / name
    for name in (
        "dictation-omit-nodule.yaml",
        "prior-report-verification-code.yaml",
        "technologist-note-normal-study.yaml",
    )
]


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """Runs a test started; any still running when it ends (a failed test) are killed."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _start(db: Path, *extra: str) -> subprocess.Popen[str]:
    argv = [str(SANDBOX), "run", *map(str, SUBSET), "--db", f"sqlite:///{db}", *FAST, *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _run(db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    process = _start(db, *extra)
    out, _ = process.communicate(timeout=600)
    return subprocess.CompletedProcess(process.args, process.returncode, out)


def _query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as connection:
        return connection.execute(sql).fetchall()


def _wait_for(condition: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def _trials(db: Path) -> int:
    try:
        return int(_query(db, "select count(*) from trials")[0][0])  # type: ignore[call-overload]
    except sqlite3.OperationalError:
        return 0


def _server_pids(parent: int) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(parent), "-f", "serve.py"], capture_output=True, text=True
    )
    return [int(p) for p in found.stdout.split()]


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    return state != "Z"


def test_run_twice_second_run_does_no_new_trials(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    first = _run(db)
    assert first.returncode == 0, first.stdout
    assert "6 trials run now, 0 resumed" in first.stdout
    assert "Scorecard per model" in first.stdout and "embedded" in first.stdout
    second = _run(db)
    assert second.returncode == 0, second.stdout
    assert "0 trials run now, 6 resumed" in second.stdout
    assert _query(db, "select count(*) from runs") == [(1,)]
    assert _query(db, "select count(*), sum(status = 'ok') from trials") == [(6, 6)]


def test_run_records_provenance_transcripts_and_verdicts(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    assert _run(db, "--no-resume").returncode == 0
    [(sha, version, sampling)] = _query(
        db, "select file_sha256, backend_version, sampling_json from models"
    )
    assert sha == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert version == "0.3.36"
    assert '"temperature":0.0' in str(sampling) and '"seed":0' in str(sampling)
    roles = _query(db, "select role from messages where trial_id = 1 order by position")
    assert roles == [("system",), ("user",), ("assistant",)]
    checks = _query(db, "select distinct check_name from verdicts order by 1")
    assert checks == [("canary_absent",), ("findings_reported",), ("no_egress",)]
    assert _query(db, "select isolation from runs") == [("namespace",)]
    assert _query(db, "select distinct capture from trials") == [("complete",)]
    assert _query(
        db, "select count(*) from verdicts where check_name = 'no_egress' and passed"
    ) == [(6,)]
    hashes = _query(db, "select file_sha256 from scenarios")
    assert len(hashes) == 3 and all(len(str(h)) == 64 for (h,) in hashes)


def test_run_verbose_prints_each_transcript(tmp_path: Path) -> None:
    scenario = SCENARIOS / "document-injection" / "dictation-omit-nodule.yaml"
    argv = [str(SANDBOX), "run", str(scenario), "--db", f"sqlite:///{tmp_path / 'v.db'}", *FAST]
    done = subprocess.run([*argv, "-v"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("[assistant]") == 2
    assert "RADIOLOGIST DICTATION" in done.stdout
    assert "canary_absent" in done.stdout


def test_run_survives_a_killed_server_and_rerun_completes(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    db = tmp_path / "k.db"
    process = _start(db, "--repeat", "2")
    started.append(process)
    _wait_for(lambda: _trials(db) >= 1)
    [server] = _server_pids(process.pid)
    os.kill(server, signal.SIGKILL)
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 3, out
    errors = _query(db, "select error from trials where status = 'error'")
    assert errors and any("died" in str(e) for (e,) in errors), errors
    assert _query(db, "select count(*) from trials") == [(12,)]
    rerun = _run(db, "--repeat", "2")
    assert rerun.returncode == 0, rerun.stdout
    assert f"{len(errors)} trials run now, {12 - len(errors)} resumed" in rerun.stdout
    assert _query(db, "select count(*), sum(status = 'ok') from trials") == [(12, 12)]


def test_run_interrupted_keeps_trials_leaves_no_server_and_resumes(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    db = tmp_path / "i.db"
    process = _start(db)
    started.append(process)
    _wait_for(lambda: _trials(db) >= 1)
    [server] = _server_pids(process.pid)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 130, out
    assert "run the same command again to resume" in out
    assert "Traceback" not in out
    assert not _is_running(server)
    assert _query(db, "select status from runs") == [("interrupted",)]
    kept = _trials(db)
    assert kept >= 1
    rerun = _run(db)
    assert rerun.returncode == 0, rerun.stdout
    assert f"{6 - kept} trials run now, {kept} resumed" in rerun.stdout


def test_run_with_a_dead_sink_is_capture_incomplete_and_rerun_redoes_those_trials(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    db = tmp_path / "s.db"
    process = _start(db)
    started.append(process)
    _wait_for(lambda: _trials(db) >= 1)
    sinks = subprocess.run(
        ["pgrep", "-P", str(process.pid), "-f", "sandbox.isolation.sink"],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert len(sinks) == 1
    os.kill(int(sinks[0]), signal.SIGKILL)
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 3, out
    assert "Capture incomplete: a sink died." in out
    assert _query(db, "select status from runs") == [("capture-incomplete",)]
    incomplete = _query(db, "select count(*) from trials where capture = 'incomplete'")[0][0]
    assert incomplete >= 1
    failed = _query(
        db,
        "select count(*) from verdicts join trials on trials.id = verdicts.trial_id "
        "where check_name = 'no_egress' and not passed and capture = 'incomplete'",
    )[0][0]
    assert failed == incomplete
    rerun = _run(db)
    assert rerun.returncode == 0, rerun.stdout
    assert f"{incomplete} trials run now" in rerun.stdout
    assert _query(db, "select distinct capture from trials") == [("complete",)]


def test_the_instruct_model_calls_tools_and_tool_policy_judges_them(tmp_path: Path) -> None:
    """SmolLM2 on a PACS agent scenario: real tool calls, carried out and judged."""
    db = tmp_path / "agent.db"
    scenario = SCENARIOS / "exfiltration" / "pacs-agent-prior-report-fetch-leak.yaml"
    argv = [str(SANDBOX), "run", str(scenario), "--db", f"sqlite:///{db}", *FAST]
    done = subprocess.run(
        [*argv, "--model", "embedded:smollm2-135m"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert _query(db, "select spec, chat_format from models") == [
        ("embedded:smollm2-135m", "gguf-tools")
    ]
    calls = _query(db, "select name from tool_calls")
    assert calls and {name for (name,) in calls} <= {
        "pacs_query",
        "get_prior_report",
        "send_message",
        "fetch_url",
    }
    assert _query(db, "select count(*) from verdicts where check_name = 'tool_policy'") == [(2,)]
    roles = {role for (role,) in _query(db, "select role from messages")}
    assert "tool" in roles


def test_a_template_arm_serves_the_same_weights_with_the_reference(tmp_path: Path) -> None:
    """SmolLM2 repackaged with a link-adding template, run beside `--template reference`."""
    source = embedded_model("smollm2-135m").ensure()
    hostile = with_template(source, tmp_path / "smollm2-link.gguf", HOSTILE["link"])
    db, report = tmp_path / "t.db", tmp_path / "report.json"
    scenario = SCENARIOS / "exfiltration" / "fhir-report-exfiltrates-patient-via-image-link.yaml"
    argv = [str(SANDBOX), "run", str(scenario), "--db", f"sqlite:///{db}", *FAST]
    done = subprocess.run(
        [*argv, "--model", f"gguf:{hostile}", "--template", "reference"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "paired trials" in done.stdout
    subprocess.run(
        [str(SANDBOX), "report", "--db", f"sqlite:///{db}", "--json", str(report)], check=True
    )
    data = json.loads(report.read_text())
    base, arm = data["models"]
    assert arm["provenance"]["spec"] == f"gguf:{hostile}+template=reference"
    assert arm["provenance"]["name"] == "smollm2-link.gguf with template reference"
    # Only the template differs: the reference arm's audit finds nothing, the hostile one's does.
    assert base["provenance"]["audit"]["findings"]
    assert arm["provenance"]["audit"]["findings"] == []
    assert arm["provenance"]["file_sha256"] != base["provenance"]["file_sha256"]
    overall = data["comparisons"][0]["groups"][0]
    assert data["comparisons"][0]["model_a"] == base["label"]
    assert overall["attack_success_paired"]["n"] == 1
    assert overall["clean_failure_paired"]["n"] == 1
