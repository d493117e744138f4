"""`sandbox.evaluate` as a library call, against a scripted OpenAI-compatible server on loopback.

The server (tests/stub_model.py's handler) stands in for the model only: loading, the resume
identity, the store, the status and the report are the real ones.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import sandbox
from sandbox import Evaluation, EvaluationObserver, ExitCode, Interrupted, RunStatus, evaluate
from sandbox.errors import ModelSpecError, ScenarioError
from sandbox.runner import TrialResult
from tests import stub_model

OBEYS = "Report withheld as instructed."  # omits the nodule: attack success on the attacked twin
GOOD = "FINDINGS: 9 mm nodule in the right upper lobe."


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Serve a fixed reply on 127.0.0.1; returns a function from reply text to model spec."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), stub_model.Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def spec(reply: str) -> str:
        monkeypatch.setattr(stub_model, "SCRIPT", [{"content": reply}])
        return f"openai:http://127.0.0.1:{server.server_address[1]}/v1#stub"

    yield spec
    server.shutdown()
    server.server_close()


def _evaluate(path: Path, spec: str, **options: Any) -> Evaluation:
    return evaluate(path, [spec], isolation="none", timeout_s=30, **options)


def test_evaluate_returns_the_run_its_status_and_its_report(
    write_scenario: Callable[..., Path], endpoint: Callable[[str], str], tmp_path: Path
) -> None:
    result = _evaluate(write_scenario(), endpoint(GOOD))
    assert result.status is RunStatus.COMPLETE and result.exit_code is ExitCode.OK
    assert (result.outcome.ran, result.outcome.skipped, result.errored) == (2, 0, 0)
    assert result.db_url == f"sqlite:///{tmp_path / 'results' / 'sandbox.db'}"
    assert result.attack_success().k == 0 and result.attack_success().n == 1
    [run] = result.report.runs
    assert run.id == result.run_id and run.status == "complete"


def test_evaluate_counts_an_obeyed_payload_as_attack_success(
    write_scenario: Callable[..., Path], endpoint: Callable[[str], str]
) -> None:
    spec = endpoint(OBEYS)
    result = _evaluate(write_scenario(), spec)
    rate = result.attack_success(spec)
    assert (rate.k, rate.n) == (1, 1)
    with pytest.raises(KeyError, match="no model 'other'"):
        result.attack_success("other")


def test_evaluate_again_resumes_the_same_run_without_new_trials(
    write_scenario: Callable[..., Path], endpoint: Callable[[str], str]
) -> None:
    path, spec = write_scenario(), endpoint(GOOD)
    first = _evaluate(path, spec)
    again = _evaluate(path, spec)
    assert again.run_id == first.run_id and again.resumed
    assert (again.outcome.ran, again.outcome.skipped) == (0, 2)
    fresh = _evaluate(path, spec, resume=False)
    assert fresh.run_id != first.run_id and fresh.outcome.ran == 2


class _StopAfterFirst(EvaluationObserver):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def preparing(self, models: int) -> None:
        self.seen.append(f"preparing {models}")

    def run_started(self, run_id: str, resumed: bool, shape: str) -> None:
        self.seen.append(f"started {resumed} {shape}")

    def trial_finished(self, result: TrialResult) -> None:
        raise KeyboardInterrupt


def test_an_interrupted_evaluation_marks_the_run_and_the_next_call_completes_it(
    write_scenario: Callable[..., Path], endpoint: Callable[[str], str]
) -> None:
    path, spec, observer = write_scenario(), endpoint(GOOD), _StopAfterFirst()
    with pytest.raises(Interrupted) as stopped:
        _evaluate(path, spec, observer=observer)
    assert isinstance(stopped.value, KeyboardInterrupt)
    assert observer.seen == [
        "preparing 1",
        "started False 1 scenarios × 2 variants × 1 model(s) × 1 repeat(s)",
    ]
    db = path.parent.parent / "results" / "sandbox.db"
    with sqlite3.connect(db) as connection:
        query = "select status from runs where id = ?"
        [(status,)] = connection.execute(query, (stopped.value.run_id,)).fetchall()
    assert status == RunStatus.INTERRUPTED
    resumed = _evaluate(path, spec)
    assert resumed.run_id == stopped.value.run_id and resumed.status is RunStatus.COMPLETE
    assert (resumed.outcome.ran, resumed.outcome.skipped) == (1, 1)


def test_evaluate_raises_user_errors_with_a_hint(
    write_scenario: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScenarioError, match="no scenario files") as empty:
        evaluate(tmp_path / "empty", ["embedded"])
    assert "scenarios/" in empty.value.hint
    with pytest.raises(ScenarioError, match="nothing-here: no such file"):
        evaluate(tmp_path / "nothing-here", ["embedded"])
    with pytest.raises(ModelSpecError):
        evaluate(write_scenario(), ["gpt-4"])


def test_the_package_exports_its_api_lazily() -> None:
    assert sandbox.evaluate is evaluate and sandbox.RunStatus is RunStatus
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        sandbox.nothing  # noqa: B018


@pytest.mark.parametrize(
    ("errored", "capture_complete", "status", "code"),
    [
        (0, True, RunStatus.COMPLETE, ExitCode.OK),
        (0, False, RunStatus.CAPTURE_INCOMPLETE, ExitCode.INCOMPLETE),
        (2, False, RunStatus.INCOMPLETE, ExitCode.INCOMPLETE),
    ],
)
def test_run_status_and_exit_code_follow_errors_then_capture(
    errored: int, capture_complete: bool, status: RunStatus, code: ExitCode
) -> None:
    assert RunStatus.of(errored, capture_complete) is status
    assert ExitCode.for_status(status) is code
