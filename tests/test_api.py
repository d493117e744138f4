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
from sandbox.isolation import namespace
from sandbox.runner import Shard, TrialResult
from tests import stub_model
from tests.helpers import scenario_data

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


def _library(write_scenario: Callable[..., Path], count: int) -> Path:
    for i in range(count):
        write_scenario(scenario_data(id=f"shard-case-{i:02d}"), name=f"s{i:02d}.yaml")
    return write_scenario(scenario_data(), name="s-base.yaml").parent


def _keys(db: Path, run_id: str) -> list[str]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("select key from trials where run_id = ?", (run_id,))
        return sorted(key for (key,) in rows)


def _verdicts(db: Path, run_id: str) -> list[tuple[str, str, int]]:
    query = (
        "select t.key, v.check_name, v.passed from trials t join verdicts v on v.trial_id = t.id"
        " where t.run_id = ?"
    )
    with sqlite3.connect(db) as connection:
        return sorted(connection.execute(query, (run_id,)))


def test_two_shards_started_together_store_every_trial_of_one_run_once(
    write_scenario: Callable[..., Path], endpoint: Callable[[str], str], tmp_path: Path
) -> None:
    folder, spec = _library(write_scenario, 7), endpoint(GOOD)
    db = tmp_path / "shared.db"
    barrier, results = threading.Barrier(2), {}

    def shard(k: int) -> None:
        barrier.wait()  # both begin the run at the same moment
        results[k] = _evaluate(folder, spec, db=f"sqlite:///{db}", shard=Shard(k, 2))

    threads = [threading.Thread(target=shard, args=(k,)) for k in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results[1].run_id == results[2].run_id
    keys = _keys(db, results[1].run_id)
    assert len(keys) == len(set(keys)) == 16  # 8 scenarios x 2 variants, each stored once
    assert results[1].outcome.ran + results[2].outcome.ran == 16
    assert {results[1].status, results[2].status} <= {RunStatus.RUNNING, RunStatus.COMPLETE}
    assert RunStatus.COMPLETE in {results[1].status, results[2].status}
    assert results[1].exit_code is results[2].exit_code is ExitCode.OK
    single = _evaluate(folder, spec, db=f"sqlite:///{tmp_path / 'single.db'}")
    assert _keys(tmp_path / "single.db", single.run_id) == keys
    assert _verdicts(tmp_path / "single.db", single.run_id) == _verdicts(db, results[1].run_id)


def test_a_shard_alone_leaves_the_run_running_and_a_rerun_stores_nothing_twice(
    write_scenario: Callable[..., Path], endpoint: Callable[[str], str], tmp_path: Path
) -> None:
    folder, spec = _library(write_scenario, 5), endpoint(GOOD)
    db = f"sqlite:///{tmp_path / 'r.db'}"
    first = _evaluate(folder, spec, db=db, shard=Shard(1, 3))
    assert first.status is RunStatus.RUNNING and first.waiting > 0
    assert first.exit_code is ExitCode.OK  # its own slice is done
    again = _evaluate(folder, spec, db=db, shard=Shard(1, 3))
    assert again.run_id == first.run_id and again.outcome.ran == 0
    rest = [_evaluate(folder, spec, db=db, shard=Shard(k, 3)) for k in (2, 3)]
    assert rest[-1].status is RunStatus.COMPLETE and rest[-1].waiting == 0
    keys = _keys(tmp_path / "r.db", first.run_id)
    assert len(keys) == len(set(keys)) == 12
    whole = _evaluate(folder, spec, db=db)  # the unsharded command resumes the same run
    assert whole.run_id == first.run_id and whole.outcome.ran == 0
    assert whole.status is RunStatus.COMPLETE


def test_a_sharded_run_cannot_be_fresh(write_scenario: Callable[..., Path]) -> None:
    with pytest.raises(ValueError, match="cannot be fresh"):
        evaluate(write_scenario(), ["embedded"], resume=False, shard=Shard(1, 2))


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.skipif(
    namespace.unavailable_reason() is not None, reason=str(namespace.unavailable_reason())
)
def test_evaluate_audits_the_model_file_and_the_report_carries_it(
    write_scenario: Callable[..., Path], embedded_env: None
) -> None:
    result = evaluate(
        write_scenario(),
        ["embedded:smollm2-135m"],
        isolation="namespace",
        max_tokens=8,
        timeout_s=120,
    )
    audit = result.report.models[0].provenance.audit
    assert audit is not None and audit.findings == ()
    assert audit.facts["reference"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert audit.sha256 == result.report.models[0].provenance.file_sha256
