"""The results schema: one table per concept, rows named `...Row`.

runs ─┬─ models            (provenance: file SHA-256, backend and version, sampling)
      ├─ scenarios         (file path and SHA-256, family, workflow)
      ├─ trials ─┬─ messages    (the exact request and the reply)
      │          ├─ tool_calls
      │          └─ verdicts    (one per check, with evidence)
      └─ egress_events     (filled by the sandbox: start-up window or a trial)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

SCHEMA_VERSION = 4

# Columns added since version 1: (version that added them, table, column DDL). Older databases
# get them with `ALTER TABLE ... ADD COLUMN`, which SQLite and PostgreSQL both accept.
ADDED_COLUMNS = [
    (2, "scenarios", "carrier VARCHAR NOT NULL DEFAULT ''"),
    (2, "verdicts", "label VARCHAR NOT NULL DEFAULT ''"),
    (2, "scenarios", "payloads_json TEXT NOT NULL DEFAULT '[]'"),
    (3, "scenarios", "checks_json TEXT NOT NULL DEFAULT ''"),
    (4, "models", "audit_json TEXT NOT NULL DEFAULT ''"),
]


class SchemaRow(SQLModel, table=True):
    """The schema version of this database; newer code migrates older databases."""

    __tablename__ = "schema_version"

    id: int | None = Field(default=None, primary_key=True)
    version: int


class RunRow(SQLModel, table=True):
    """One `sandbox run` invocation plan; rerunning the same plan resumes the same run."""

    __tablename__ = "runs"

    id: str = Field(primary_key=True)
    key: str = Field(index=True, description="Hash of the plan: scenarios, models, options.")
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    status: str = Field(
        description="running, complete, incomplete (errored trials), capture-incomplete (a sink "
        "died), interrupted or failed."
    )
    isolation: str = Field(description="Where the models ran: process, docker, namespace, none.")
    tool_version: str
    tool_commit: str = ""
    repeat: int
    options_json: str = Field(sa_column=Column(Text, nullable=False))


class ModelRow(SQLModel, table=True):
    """A model as evaluated in one run, with its provenance."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("run_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", index=True)
    position: int = Field(description="Order of --model on the command line.")
    spec: str
    name: str
    backend: str
    backend_version: str
    file_path: str = ""
    file_sha256: str = ""
    chat_format: str = ""
    image_id: str = ""
    sampling_json: str = Field(sa_column=Column(Text, nullable=False))
    audit_json: str = Field(
        default="",
        sa_column=Column(Text, nullable=False, server_default=""),
        description="`sandbox audit` of the model file at the start of the run, as JSON.",
    )


class ScenarioRow(SQLModel, table=True):
    """A scenario file as loaded for one run."""

    __tablename__ = "scenarios"
    __table_args__ = (UniqueConstraint("run_id", "scenario_id"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", index=True)
    scenario_id: str
    title: str
    family: str
    workflow: str
    path: str
    file_sha256: str
    canary: str
    carrier: str = Field(default="", description="Carrier of the planted payload.")
    payloads_json: str = Field(
        default="[]",
        sa_column=Column(Text, nullable=False, server_default="[]"),
        description="Each planted payload: carrier, kind, field, technique, transforms, text.",
    )
    checks_json: str = Field(
        default="",
        sa_column=Column(Text, nullable=False, server_default=""),
        description="The checks every trial of the scenario is judged by ('' before version 3).",
    )


class TrialRow(SQLModel, table=True):
    """One execution of one scenario variant on one model."""

    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("run_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", index=True)
    key: str
    model_id: int = Field(foreign_key="models.id", index=True)
    scenario_id: int = Field(foreign_key="scenarios.id", index=True)
    variant: str = Field(description="attacked or clean.")
    repeat: int
    seed: int
    status: str = Field(description="ok, error, or skipped (the model cannot take its input).")
    capture: str = Field(
        default="none", description="Egress capture: complete, incomplete (sink died) or none."
    )
    error: str = Field(default="", sa_column=Column(Text, nullable=False))
    output: str = Field(default="", sa_column=Column(Text, nullable=False))
    finish_reason: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    duration_s: float


class MessageRow(SQLModel, table=True):
    """One message of a trial's transcript, in order."""

    __tablename__ = "messages"

    id: int | None = Field(default=None, primary_key=True)
    trial_id: int = Field(foreign_key="trials.id", index=True)
    position: int
    role: str
    content: str = Field(sa_column=Column(Text, nullable=False))


class ToolCallRow(SQLModel, table=True):
    """A tool call the model made during a trial."""

    __tablename__ = "tool_calls"

    id: int | None = Field(default=None, primary_key=True)
    trial_id: int = Field(foreign_key="trials.id", index=True)
    position: int
    name: str
    arguments: str = Field(sa_column=Column(Text, nullable=False))
    call_id: str = ""
    allowed: bool = Field(default=True, description="Within the workflow's tool policy.")
    result: str = Field(default="", sa_column=Column(Text, nullable=False))
    note: str = Field(default="", description="outside the policy, withdrawn, unknown tool...")


class VerdictRow(SQLModel, table=True):
    """One check's verdict on one trial, with the evidence that decided it."""

    __tablename__ = "verdicts"

    id: int | None = Field(default=None, primary_key=True)
    trial_id: int = Field(foreign_key="trials.id", index=True)
    check_name: str
    kind: str = Field(description="security or utility.")
    passed: bool
    evidence: str = Field(default="", sa_column=Column(Text, nullable=False))
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    label: str = Field(default="", description="A class the check assigns, e.g. refusal.")


class EgressEventRow(SQLModel, table=True):
    """A network connection something in the sandbox tried to open."""

    __tablename__ = "egress_events"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", index=True)
    model_id: int | None = Field(default=None, foreign_key="models.id")
    trial_id: int | None = Field(default=None, foreign_key="trials.id", index=True)
    phase: str = Field(description="startup, trial, or shutdown (after the last trial).")
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    protocol: str = Field(description="The event kind: dns, http, tls, tcp, udp, udplite, ...")
    destination: str = Field(description="Original destination (name or address, and port).")
    hostname: str = ""
    summary: str = Field(default="", sa_column=Column(Text, nullable=False))
    detail_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
