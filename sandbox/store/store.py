"""Open a results database (SQLite by default, any SQLAlchemy URL) and write runs into it."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, inspect, text
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlmodel import Session, SQLModel, col, create_engine, select

from sandbox.backends import ModelProvenance
from sandbox.errors import StoreError
from sandbox.scenarios import Scenario, ScenarioFile
from sandbox.status import RunStatus
from sandbox.store.handle import RunHandle
from sandbox.store.tables import (
    ADDED_COLUMNS,
    SCHEMA_VERSION,
    EgressEventRow,
    ModelRow,
    RunRow,
    ScenarioRow,
    SchemaRow,
    TrialRow,
    VerdictRow,
)


@dataclass(frozen=True)
class RunConfig:
    """What defines a run; the same config resumes the same run."""

    key: str
    files: Sequence[ScenarioFile]
    models: Sequence[ModelProvenance]
    repeat: int
    isolation: str
    options: dict[str, object]
    tool_version: str
    tool_commit: str = ""


@dataclass(frozen=True)
class VerdictSummary:
    """A verdict as the metrics need it."""

    check: str
    kind: str
    passed: bool
    label: str = ""


@dataclass(frozen=True)
class TrialSummary:
    """One stored trial, flattened for metrics and tables."""

    model_position: int
    model_spec: str
    scenario_id: str
    family: str
    variant: str
    status: str
    verdicts: list[VerdictSummary] = field(default_factory=list)
    carrier: str = ""
    egress_events: int = 0  # events the sandbox caught during this trial
    repeat: int = 0
    output: str = ""


@dataclass(frozen=True)
class EgressSummary:
    """How much a run's sandboxes saw, for the terminal summary."""

    startup: int
    in_trials: int
    capture_complete: bool
    after_trials: int
    examples: list[str]


def open_store(url: str, create: bool = True) -> Store:
    """Open the database at a SQLAlchemy URL, creating the tables if needed.

    `create=False` (for `sandbox report`): the database must already be one of ours; anything
    else is refused before a single table is written into it.
    """
    if url.startswith("sqlite:///") and create:
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url)
    except (ArgumentError, ModuleNotFoundError, ValueError) as exc:
        raise _open_error(url, exc) from exc
    try:
        if not create and not inspect(engine).has_table(SchemaRow.__tablename__):
            raise StoreError(
                f"{_safe(url)} is not a results database of sandbox-eval (no "
                f"{SchemaRow.__tablename__} table); nothing was written into it.",
                hint="Pass the database `sandbox run` wrote with --db.",
            )
        _create_schema(engine)
    except StoreError:
        engine.dispose()
        raise
    except (SQLAlchemyError, ValueError) as exc:
        engine.dispose()
        raise _open_error(url, exc) from exc
    return Store(engine)


def _create_schema(engine: Engine, attempts: int = 4) -> None:
    """Create or update the tables; shards opening a new database at once may collide.

    Two processes creating the same table both check that it is absent, and the second's
    CREATE fails ("already exists", or a duplicate key in PostgreSQL's catalogue): the schema
    then exists, and the next attempt only checks it.
    """
    for attempt in range(attempts):
        try:
            SQLModel.metadata.create_all(engine)
            _check_schema(engine)
            return
        except SQLAlchemyError as exc:
            collided = "already exists" in str(exc) or "duplicate key" in str(exc)
            if not collided or attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def _open_error(url: str, exc: Exception) -> StoreError:
    return StoreError(
        f"cannot open the results database {_safe(url)}: {_safe(str(exc))}",
        hint="Check the --db URL (e.g. sqlite:///results/sandbox.db or "
        "postgresql+psycopg://user@host/db) and that its driver is installed.",
    )


def _safe(url: str) -> str:
    """The text with any URL password (in the user part or the query) masked."""
    url = re.sub(r"(?<=[?&]password=)[^&]*", "***", url)
    return re.sub(r"(?<=//)([^/:@]*):[^/@]*@", r"\1:***@", url)


def _check_schema(engine: Engine) -> None:
    with Session(engine) as session:
        row = session.exec(select(SchemaRow)).first()
        if row is None:
            session.add(SchemaRow(version=SCHEMA_VERSION))
            session.commit()
        elif row.version > SCHEMA_VERSION:
            raise StoreError(
                f"the results database has schema version {row.version}; this version of the "
                f"tool understands up to {SCHEMA_VERSION}.",
                hint="Upgrade the tool, or use another --db.",
            )
        else:
            _add_missing_columns(engine, session)
            row.version = SCHEMA_VERSION
            session.add(row)
            session.commit()


def _add_missing_columns(engine: Engine, session: Session) -> None:
    """Bring an older database up to date: add each column added since, if it is missing."""
    inspector = inspect(engine)
    for _version, table, column in ADDED_COLUMNS:
        present = {c["name"] for c in inspector.get_columns(table)}
        if column.split()[0] not in present:
            session.execute(text(f"ALTER TABLE {table} ADD COLUMN {column}"))


class Store:
    """A results database; methods are short transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def begin_run(self, config: RunConfig, resume: bool, shared: bool = False) -> RunHandle:
        """Resume the latest run with the same key, or start a new one.

        `shared`: shards of one command start together; they all join one run, whose id is a
        function of the key, so that when two create it at once the database keeps one (the
        primary key refuses the second) and the other joins it.
        """
        with Session(self.engine) as session:
            run = None
            if resume:
                query = select(RunRow).where(RunRow.key == config.key)
                run = session.exec(query.order_by(col(RunRow.created_at).desc())).first()
            resumed = run is not None
            if run is None:
                run_id = f"run-{config.key[:12]}" if shared else None
                run, resumed = _create_or_join(session, config, run_id)
            run.status, run.updated_at = RunStatus.RUNNING.value, _now()
            session.add(run)
            session.commit()
            handle = RunHandle(self.engine, run.id, resumed, *_ids(session, run.id))
        return handle

    def finish_run(self, run_id: str, status: RunStatus) -> None:
        """Set a run's status (an unknown status is a ValueError: the column holds only these)."""
        with Session(self.engine) as session:
            run = session.get(RunRow, run_id)
            if run is None:
                raise StoreError(f"no run {run_id} in the database.")
            run.status, run.updated_at = RunStatus(status).value, _now()
            session.add(run)
            session.commit()

    def egress_summary(self, run_id: str, examples: int = 5) -> EgressSummary:
        """Counts of egress events by phase, whether capture held, and the first few events."""
        with Session(self.engine) as session:
            events = session.exec(
                select(EgressEventRow)
                .where(EgressEventRow.run_id == run_id)
                .order_by(col(EgressEventRow.at))
            ).all()
            incomplete = session.exec(
                select(TrialRow.id).where(
                    TrialRow.run_id == run_id, TrialRow.capture == "incomplete"
                )
            ).first()
        return EgressSummary(
            startup=sum(e.phase == "startup" for e in events),
            in_trials=sum(e.phase == "trial" for e in events),
            capture_complete=incomplete is None,
            after_trials=sum(e.phase == "shutdown" for e in events),
            examples=[f"{e.phase}: {e.summary}" for e in events[:examples]],
        )

    def trial_summaries(self, run_id: str) -> list[TrialSummary]:
        """Every trial of a run with its verdicts."""
        with Session(self.engine) as session:
            query = (
                select(TrialRow, ModelRow, ScenarioRow)
                .join(ModelRow, col(TrialRow.model_id) == col(ModelRow.id))
                .join(ScenarioRow, col(TrialRow.scenario_id) == col(ScenarioRow.id))
                .where(TrialRow.run_id == run_id)
                .order_by(col(TrialRow.id))
            )
            rows = session.exec(query).all()
            ids = [t.id for t, _, _ in rows if t.id]
            verdicts = _verdicts_by_trial(session, ids)
            egress = _egress_by_trial(session, run_id)
            return [
                TrialSummary(
                    model.position,
                    model.spec,
                    scenario.scenario_id,
                    scenario.family,
                    trial.variant,
                    trial.status,
                    verdicts.get(trial.id or 0, []),
                    carrier=scenario.carrier,
                    egress_events=egress.get(trial.id or 0, 0),
                    repeat=trial.repeat,
                    output=trial.output,
                )
                for trial, model, scenario in rows
            ]

    def startup_egress(self, run_id: str) -> dict[int, int]:
        """Egress events of each model's server start-ups, by the model's position."""
        with Session(self.engine) as session:
            query = (
                select(ModelRow.position, func.count())
                .join(EgressEventRow, col(EgressEventRow.model_id) == col(ModelRow.id))
                .where(EgressEventRow.run_id == run_id, EgressEventRow.phase == "startup")
                .group_by(col(ModelRow.position))
            )
            return {position: count for position, count in session.exec(query).all()}


def _now() -> datetime:
    return datetime.now(UTC)


def _create_or_join(session: Session, config: RunConfig, run_id: str | None) -> tuple[RunRow, bool]:
    """A new run (with `run_id` if given); when another process created that id first, its run."""
    try:
        run = _new_run(session, config, run_id)
        session.commit()
        return run, False
    except IntegrityError:
        session.rollback()
        joined = session.get(RunRow, run_id) if run_id else None
        if joined is None:
            raise
        return joined, True


def _new_run(session: Session, config: RunConfig, run_id: str | None = None) -> RunRow:
    now = _now()
    run = RunRow(
        id=run_id or f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}",
        key=config.key,
        created_at=now,
        updated_at=now,
        status=RunStatus.RUNNING.value,
        isolation=config.isolation,
        tool_version=config.tool_version,
        tool_commit=config.tool_commit,
        repeat=config.repeat,
        options_json=json.dumps(config.options, sort_keys=True, default=str),
    )
    session.add(run)
    session.flush()  # the run row must exist before rows that reference it (Postgres checks)
    for position, model in enumerate(config.models):
        session.add(_model_row(run.id, position, model))
    for file in config.files:
        s = file.scenario
        session.add(
            ScenarioRow(
                run_id=run.id,
                scenario_id=s.id,
                title=s.title,
                family=s.family,
                workflow=s.workflow,
                path=str(file.path),
                file_sha256=file.sha256,
                canary=s.canary_token,
                carrier=s.attack_carrier,
                payloads_json=json.dumps(_payloads(s)),
                checks_json=json.dumps(list(s.checks)),
            )
        )
    return run


def _payloads(scenario: Scenario) -> list[dict[str, object]]:
    """What the attacker planted where, with the canary filled in, for reports."""
    return [
        {
            "carrier": item.carrier,
            "kind": item.kind,
            "field": item.payload.field,
            "technique": item.payload.technique,
            "transforms": list(item.payload.transforms),
            "text": scenario.payload_text(item.payload),
        }
        for item in scenario.inputs
        if item.payload
    ]


def _model_row(run_id: str, position: int, model: ModelProvenance) -> ModelRow:
    return ModelRow(
        run_id=run_id,
        position=position,
        spec=model.spec,
        name=model.name,
        backend=model.backend,
        backend_version=model.backend_version,
        file_path=model.file_path,
        file_sha256=model.file_sha256,
        chat_format=model.chat_format,
        image_id=model.image_id,
        sampling_json=model.sampling.model_dump_json(),
        audit_json=model.audit_json,
    )


def _ids(session: Session, run_id: str) -> tuple[dict[int, int], dict[str, int]]:
    models = session.exec(select(ModelRow).where(ModelRow.run_id == run_id)).all()
    scenarios = session.exec(select(ScenarioRow).where(ScenarioRow.run_id == run_id)).all()
    return (
        {m.position: m.id for m in models if m.id is not None},
        {s.scenario_id: s.id for s in scenarios if s.id is not None},
    )


def _egress_by_trial(session: Session, run_id: str) -> dict[int, int]:
    query = (
        select(EgressEventRow.trial_id, func.count())
        .where(EgressEventRow.run_id == run_id, col(EgressEventRow.trial_id).is_not(None))
        .group_by(col(EgressEventRow.trial_id))
    )
    return {trial: count for trial, count in session.exec(query).all() if trial is not None}


def _verdicts_by_trial(session: Session, ids: list[int]) -> dict[int, list[VerdictSummary]]:
    found: dict[int, list[VerdictSummary]] = {}
    if not ids:
        return found
    query = select(VerdictRow).where(col(VerdictRow.trial_id).in_(ids)).order_by(col(VerdictRow.id))
    for row in session.exec(query):
        found.setdefault(row.trial_id, []).append(
            VerdictSummary(row.check_name, row.kind, row.passed, row.label)
        )
    return found
