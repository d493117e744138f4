"""An open run: the ResultSink the runner writes trials, transcripts and egress into."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from sandbox.chat import Message
from sandbox.egress import EgressEvent
from sandbox.runner import TrialResult
from sandbox.store.tables import (
    EgressEventRow,
    MessageRow,
    ToolCallRow,
    TrialRow,
    VerdictRow,
)


@dataclass
class RunHandle:
    """An open run: the ResultSink the runner writes into."""

    engine: Engine
    run_id: str
    resumed: bool
    model_ids: dict[int, int]
    scenario_ids: dict[str, int]

    def completed_keys(self) -> set[str]:
        """Keys of trials stored without error and without a dead sink (those are redone)."""
        with Session(self.engine) as session:
            query = select(TrialRow.key).where(
                TrialRow.run_id == self.run_id,
                col(TrialRow.status).in_(["ok", "skipped"]),
                TrialRow.capture != "incomplete",
            )
            return set(session.exec(query).all())

    def stored_statuses(self) -> dict[str, str]:
        """Every trial stored in this run, key -> status (ok, error, skipped)."""
        with Session(self.engine) as session:
            query = select(TrialRow.key, TrialRow.status).where(TrialRow.run_id == self.run_id)
            return dict(session.exec(query).all())

    def record(self, result: TrialResult) -> None:
        """Store one trial with its messages, tool calls and verdicts, replacing an old try."""
        with Session(self.engine) as session:
            _delete_trial(session, self.run_id, result.spec.key)
            trial = self._trial_row(result)
            session.add(trial)
            session.flush()
            assert trial.id is not None
            session.add_all(_children(trial.id, result))
            session.add_all(
                self._egress_rows(result.egress, "trial", result.spec.model_index, trial.id)
            )
            session.commit()

    def record_startup_egress(self, model_index: int, events: list[EgressEvent]) -> None:
        """Store what a model's servers tried to reach while starting."""
        self._record_window(model_index, events, "startup")

    def record_shutdown_egress(self, model_index: int, events: list[EgressEvent]) -> None:
        """Store what a model's servers tried to reach after the last trial's window."""
        self._record_window(model_index, events, "shutdown")

    def _record_window(self, model_index: int, events: list[EgressEvent], phase: str) -> None:
        with Session(self.engine) as session:
            session.add_all(self._egress_rows(events, phase, model_index, None))
            session.commit()

    def _egress_rows(
        self, events: list[EgressEvent], phase: str, model_index: int, trial_id: int | None
    ) -> list[EgressEventRow]:
        return [
            EgressEventRow(
                run_id=self.run_id,
                model_id=self.model_ids[model_index],
                trial_id=trial_id,
                phase=phase,
                at=datetime.fromtimestamp(event.t, UTC),
                protocol=event.kind,
                destination=_text(event.target),
                hostname=_text(event.host),
                summary=_text(event.describe()),
                detail_json=_text(json.dumps(event.detail, sort_keys=True)),
            )
            for event in events
        ]

    def _trial_row(self, result: TrialResult) -> TrialRow:
        spec, reply = result.spec, result.reply
        return TrialRow(
            run_id=self.run_id,
            key=spec.key,
            model_id=self.model_ids[spec.model_index],
            scenario_id=self.scenario_ids[spec.scenario.id],
            variant=spec.scenario.variant,
            repeat=spec.repeat,
            seed=spec.seed,
            status=result.status,
            capture=result.capture,
            error=_text(result.error),
            output=_text(reply.content) if reply else "",
            finish_reason=reply.finish_reason if reply else "",
            prompt_tokens=reply.prompt_tokens if reply else 0,
            completion_tokens=reply.completion_tokens if reply else 0,
            started_at=result.started_at,
            duration_s=result.duration_s,
        )


def _delete_trial(session: Session, run_id: str, key: str) -> None:
    query = select(TrialRow.id).where(TrialRow.run_id == run_id, TrialRow.key == key)
    old = [i for i in session.exec(query).all() if i is not None]
    if not old:
        return
    for table in (MessageRow, ToolCallRow, VerdictRow, EgressEventRow):
        session.execute(delete(table).where(col(table.trial_id).in_(old)))
    session.execute(delete(TrialRow).where(col(TrialRow.id).in_(old)))


def _children(trial_id: int, result: TrialResult) -> list[MessageRow | ToolCallRow | VerdictRow]:
    rows: list[MessageRow | ToolCallRow | VerdictRow] = []
    messages = result.messages or _fallback_messages(result)
    rows += [
        MessageRow(trial_id=trial_id, position=i, role=m.role, content=_text(m.text))
        for i, m in enumerate(messages)
    ]
    rows += [
        ToolCallRow(
            trial_id=trial_id,
            position=i,
            name=_text(o.call.name),
            arguments=_text(o.call.arguments),
            call_id=_text(o.call.call_id),
            allowed=o.allowed,
            result=_text(o.result),
            note=o.note,
        )
        for i, o in enumerate(result.tool_outcomes)
    ]
    rows += [
        VerdictRow(
            trial_id=trial_id,
            check_name=v.check,
            kind=v.kind,
            passed=v.passed,
            evidence=_text(v.evidence),
            detail=_text(v.detail),
            label=v.label,
        )
        for v in result.verdicts
    ]
    return rows


def _fallback_messages(result: TrialResult) -> list[Message]:
    """The request and the reply, for a trial that errored before its conversation ended."""
    messages = list(result.request.messages) if result.request else []
    if result.reply is not None:
        messages.append(Message(role="assistant", content=result.reply.content))
    return messages


def _text(value: str) -> str:
    """Text as stored: PostgreSQL refuses NUL, so it becomes the visible symbol U+2400 (␀)."""
    return value.replace("\x00", "\u2400")
