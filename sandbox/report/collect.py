"""Read runs from the results database into a `Report`."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from sandbox import __version__
from sandbox.audit import Audit
from sandbox.backends.specs import base_label
from sandbox.errors import StoreError
from sandbox.report.metrics import paired_difference, summarise
from sandbox.report.model import (
    Comparison,
    Difference,
    EgressDestination,
    EgressOut,
    MessageOut,
    ModelReport,
    PairedOut,
    PayloadOut,
    Provenance,
    RateOut,
    Report,
    RunInfo,
    ScenarioInfo,
    ToolCallOut,
    TrialOut,
    VerdictOut,
    model_figures,
)
from sandbox.status import RunStatus
from sandbox.store import Store, TrialSummary, VerdictSummary
from sandbox.store.tables import (
    EgressEventRow,
    MessageRow,
    ModelRow,
    RunRow,
    ScenarioRow,
    ToolCallRow,
    TrialRow,
    VerdictRow,
)

LATEST = "latest"


def resolve_runs(store: Store, run_ids: Sequence[str]) -> list[str]:
    """The run ids asked for, 'latest' (or nothing) meaning the most recently updated run."""
    with Session(store.engine) as session:
        latest = session.exec(select(RunRow.id).order_by(col(RunRow.updated_at).desc())).first()
        known = set(session.exec(select(RunRow.id)).all())
    if latest is None:
        raise StoreError("the results database holds no runs.", hint="Run `sandbox run` first.")
    wanted = [latest if r == LATEST else r for r in (run_ids or [LATEST])]
    missing = [r for r in wanted if r not in known]
    if missing:
        raise StoreError(
            f"no run {', '.join(missing)} in the results database.",
            hint="`sandbox report` with no --run reports the latest run.",
        )
    return list(dict.fromkeys(wanted))


def build_report(store: Store, run_ids: Sequence[str]) -> Report:
    """Every number and every trial of the given runs, in one report."""
    runs, models, trials = [], [], []
    with Session(store.engine) as session:
        for run_id in run_ids:
            run = session.get(RunRow, run_id)
            if run is None:
                raise StoreError(f"no run {run_id} in the results database.")
            scenario_rows = session.exec(
                select(ScenarioRow).where(ScenarioRow.run_id == run_id)
            ).all()
            model_rows = session.exec(
                select(ModelRow).where(ModelRow.run_id == run_id).order_by(col(ModelRow.position))
            ).all()
            run_trials = _trials(session, run_id, scenario_rows, model_rows)
            info = _run_info(run, scenario_rows)
            checks = _checks_of(scenario_rows)
            problems = _problems(info, len(model_rows), run_trials, checks)
            runs.append(_damaged(info, problems + _not_boolean(session, run_id)))
            trials += run_trials
            models += _models(store, session, run_id, model_rows, run_trials)
    models = _labelled(models)
    return Report(
        generated_at=datetime.now(UTC),
        tool_version=__version__,
        runs=runs,
        models=models,
        comparisons=compare(models, trials),
        trials=trials,
    )


def _checks_of(scenarios: Sequence[ScenarioRow]) -> dict[str, list[str] | None]:
    """Each scenario's checks as stored with the run (None for databases before version 3)."""
    return {s.scenario_id: json.loads(s.checks_json) if s.checks_json else None for s in scenarios}


def _problems(
    run: RunInfo, models: int, trials: Sequence[TrialOut], checks: dict[str, list[str] | None]
) -> list[str]:
    """Where the run's stored trials contradict what it says of itself.

    A complete run holds every planned trial (scenarios x 2 variants x models x repeats; in a
    trigger sweep each stored scenario plays one variant: the clean twin, or one trigger), and
    every trial that ran holds one verdict per check its scenario lists: rows deleted or added
    by hand must not make a gate pass.
    """
    problems = []
    variants = 1 if run.options.get("sweep") == "triggers" else 2
    planned = len(run.scenarios) * variants * models * run.repeat
    if run.status == RunStatus.COMPLETE and len(trials) != planned:
        problems.append(f"{len(trials)} trials are stored where {planned} were planned")
    ran = [t for t in trials if t.status == "ok"]
    silent = sum(not t.verdicts for t in ran)
    if silent:
        problems.append(f"{silent} trial(s) that ran have no verdicts")
    wrong = sum(_verdicts_differ(t, checks.get(t.scenario_id)) for t in ran if t.verdicts)
    if wrong:
        problems.append(f"{wrong} trial(s) lack verdicts of their scenario's checks, or add some")
    return problems


_NOT_BOOLEAN = text(
    "SELECT count(*) FROM verdicts v JOIN trials t ON v.trial_id = t.id "
    "WHERE t.run_id = :run AND (typeof(v.passed) != 'integer' OR v.passed NOT IN (0, 1))"
)


def _not_boolean(session: Session, run_id: str) -> list[str]:
    """Verdicts whose `passed` is neither 0 nor 1, which would read back as a pass.

    SQLite stores anything in a boolean column; PostgreSQL's admits nothing else.
    """
    if session.get_bind().dialect.name != "sqlite":
        return []
    count = session.execute(_NOT_BOOLEAN, {"run": run_id}).scalar_one()
    return [f"{count} verdict(s) neither passed nor failed"] if count else []


def _damaged(run: RunInfo, problems: list[str]) -> RunInfo:
    """The run as it is, or marked damaged with its problems."""
    if not problems:
        return run
    return run.model_copy(update={"status": RunStatus.DAMAGED.value, "damage": "; ".join(problems)})


def _verdicts_differ(trial: TrialOut, listed: list[str] | None) -> bool:
    return listed is not None and sorted(v.check for v in trial.verdicts) != sorted(listed)


def _run_info(run: RunRow, scenarios: Sequence[ScenarioRow]) -> RunInfo:
    return RunInfo(
        id=run.id,
        created_at=run.created_at,
        updated_at=run.updated_at,
        status=run.status,
        isolation=run.isolation,
        tool_version=run.tool_version,
        tool_commit=run.tool_commit,
        repeat=run.repeat,
        options=json.loads(run.options_json or "{}"),
        scenarios=[
            ScenarioInfo(
                id=s.scenario_id,
                title=s.title,
                family=s.family,
                workflow=s.workflow,
                carrier=s.carrier,
                path=s.path,
                file_sha256=s.file_sha256,
                canary=s.canary,
            )
            for s in sorted(scenarios, key=lambda s: s.scenario_id)
        ],
    )


def _models(
    store: Store,
    session: Session,
    run_id: str,
    rows: Sequence[ModelRow],
    trials: Sequence[TrialOut],
) -> list[ModelReport]:
    specs = {f"{run_id}#{row.position}": (row.position, row.spec) for row in rows}
    summaries = [_summary(trial, *specs[trial.model_key]) for trial in trials]
    metrics = {m.model_position: m for m in summarise(summaries, store.startup_egress(run_id))}
    destinations = _destinations(session, run_id)
    reports = []
    for row in rows:
        if row.position not in metrics:
            continue  # a model with no trial stored yet
        overall, by_family, by_carrier = model_figures(metrics[row.position])
        reports.append(
            ModelReport(
                key=f"{run_id}#{row.position}",
                label=row.spec,
                run_id=run_id,
                position=row.position,
                provenance=Provenance(
                    spec=row.spec,
                    name=row.name,
                    backend=row.backend,
                    backend_version=row.backend_version,
                    file_sha256=row.file_sha256,
                    chat_format=row.chat_format,
                    image_id=row.image_id,
                    sampling=json.loads(row.sampling_json or "{}"),
                    audit=_audit(row.audit_json),
                ),
                overall=overall,
                by_family=by_family,
                by_carrier=by_carrier,
                startup_egress=metrics[row.position].startup_egress,
                egress_destinations=destinations.get(row.id or 0, []),
            )
        )
    return reports


def _summary(trial: TrialOut, position: int, spec: str) -> TrialSummary:
    """What the metrics need of a trial already read for the report."""
    return TrialSummary(
        position,
        spec,
        trial.scenario_id,
        trial.family,
        trial.variant,
        trial.status,
        [VerdictSummary(v.check, v.kind, v.passed, v.label) for v in trial.verdicts],
        carrier=trial.carrier,
        egress_events=len(trial.egress),
    )


def _destinations(session: Session, run_id: str) -> dict[int, list[EgressDestination]]:
    """Egress counts by model, destination and phase."""
    trial_models = dict(
        session.exec(select(TrialRow.id, TrialRow.model_id).where(TrialRow.run_id == run_id)).all()
    )
    counts: Counter[tuple[int, str, str, str]] = Counter()
    for event in session.exec(select(EgressEventRow).where(EgressEventRow.run_id == run_id)):
        model_id = event.model_id or trial_models.get(event.trial_id or 0) or 0
        where = event.hostname or event.destination
        counts[(model_id, where, event.protocol, event.phase)] += 1
    found: dict[int, dict[tuple[str, str], dict[str, int]]] = {}
    for (model_id, where, protocol, phase), n in counts.items():
        found.setdefault(model_id, {}).setdefault((where, protocol), {})[phase] = n
    return {
        model_id: [
            EgressDestination(
                destination=where,
                protocol=protocol,
                startup=phases.get("startup", 0),
                trial=phases.get("trial", 0),
                shutdown=phases.get("shutdown", 0),
            )
            for (where, protocol), phases in sorted(by_destination.items())
        ]
        for model_id, by_destination in found.items()
    }


def _trials(
    session: Session,
    run_id: str,
    scenarios: Sequence[ScenarioRow],
    models: Sequence[ModelRow],
) -> list[TrialOut]:
    by_scenario = {s.id: s for s in scenarios}
    positions = {m.id: m.position for m in models}
    rows = session.exec(
        select(TrialRow).where(TrialRow.run_id == run_id).order_by(col(TrialRow.id))
    ).all()
    ids = [t.id for t in rows if t.id is not None]
    messages = _children(session, MessageRow, ids)
    calls = _children(session, ToolCallRow, ids)
    verdicts = _children(session, VerdictRow, ids)
    egress = _children(session, EgressEventRow, ids)
    trials = []
    for trial in rows:
        scenario = by_scenario[trial.scenario_id]
        tid = trial.id or 0
        trials.append(
            TrialOut(
                id=tid,
                model_key=f"{run_id}#{positions.get(trial.model_id, 0)}",
                scenario_id=scenario.scenario_id,
                family=scenario.family,
                carrier=scenario.carrier,
                variant=trial.variant,
                repeat=trial.repeat,
                seed=trial.seed,
                status=trial.status,
                error=trial.error,
                capture=trial.capture,
                duration_s=trial.duration_s,
                finish_reason=trial.finish_reason,
                output=trial.output,
                payloads=_payloads(scenario) if trial.variant == "attacked" else [],
                messages=[MessageOut.model_validate(m) for m in messages[tid]],
                tool_calls=[ToolCallOut.model_validate(c) for c in calls[tid]],
                egress=[EgressOut.model_validate(e) for e in egress[tid]],
                verdicts=[VerdictOut.model_validate(v) for v in verdicts[tid]],
            )
        )
    return trials


def _children(session: Session, table: Any, ids: list[int]) -> dict[int, list[Any]]:
    """Rows of a child table grouped by trial id, in insertion order."""
    found: dict[int, list[Any]] = {i: [] for i in ids}
    if ids:
        query = select(table).where(col(table.trial_id).in_(ids)).order_by(col(table.id))
        for row in session.exec(query):
            found[row.trial_id].append(row)
    return found


def _payloads(scenario: ScenarioRow) -> list[PayloadOut]:
    return [PayloadOut.model_validate(p) for p in json.loads(scenario.payloads_json or "[]")]


def _labelled(models: list[ModelReport]) -> list[ModelReport]:
    """Name a model by its spec, adding the run id where two models share a spec."""
    counts = Counter(m.label for m in models)
    return [
        m if counts[m.label] == 1 else m.model_copy(update={"label": f"{m.label} ({m.run_id})"})
        for m in models
    ]


def _overlap(a: RateOut, b: RateOut) -> bool:
    return a.n == 0 or b.n == 0 or not (a.high < b.low or b.high < a.low)


def _diff(a: RateOut, b: RateOut) -> float | None:
    return None if a.value is None or b.value is None else b.value - a.value


def compare(models: Sequence[ModelReport], trials: Sequence[TrialOut] = ()) -> list[Comparison]:
    """Each model against its baseline, per family and overall, paired where the trials pair.

    The baseline is the first model, except for a model with another chat template: the same
    spec without it in the same run, when there is one.
    """
    if len(models) < 2:
        return []
    outcomes = _paired_outcomes(trials)
    comparisons = []
    for other in models[1:]:
        first = _baseline(other, models)
        groups = [("overall", first.overall, other.overall)]
        for family in sorted(set(first.by_family) | set(other.by_family)):
            a, b = first.by_family.get(family), other.by_family.get(family)
            if a is not None and b is not None:
                groups.append((family, a, b))
        mine, theirs = outcomes.get(first.key, {}), outcomes.get(other.key, {})
        comparisons.append(
            Comparison(
                model_a=first.label,
                model_b=other.label,
                groups=[
                    Difference(
                        group=name,
                        attack_success_a=a.attack_success,
                        attack_success_b=b.attack_success,
                        attack_success_diff=_diff(a.attack_success, b.attack_success),
                        attack_success_overlap=_overlap(a.attack_success, b.attack_success),
                        utility_a=a.utility_clean,
                        utility_b=b.utility_clean,
                        utility_diff=_diff(a.utility_clean, b.utility_clean),
                        utility_overlap=_overlap(a.utility_clean, b.utility_clean),
                        **_paired(mine, theirs, name),
                    )
                    for name, a, b in groups
                ],
            )
        )
    return comparisons


def _baseline(model: ModelReport, models: Sequence[ModelReport]) -> ModelReport:
    """What `model` is compared against: its own template's arm, or the first model."""
    base = base_label(model.provenance.spec)
    if base != model.provenance.spec:
        for candidate in models:
            if candidate.run_id == model.run_id and candidate.provenance.spec == base:
                return candidate
    return models[0]


# A trial's pairing key (scenario, variant, repeat, seed) and its outcomes: failed, useful.
_Outcomes = dict[tuple[str, str, int, int], tuple[str, bool, bool | None]]


def _paired_outcomes(trials: Sequence[TrialOut]) -> dict[str, _Outcomes]:
    """Per model, each trial that ran to a verdict: its family, whether it failed, its utility."""
    found: dict[str, _Outcomes] = {}
    for t in trials:
        if t.status != "ok" or not t.verdicts:
            continue
        utility = [v.passed for v in t.verdicts if v.kind == "utility"]
        key = (t.scenario_id, t.variant, t.repeat, t.seed)
        useful = all(utility) if utility else None
        found.setdefault(t.model_key, {})[key] = (t.family, t.failed, useful)
    return found


def _paired(a: _Outcomes, b: _Outcomes, group: str) -> dict[str, PairedOut]:
    """The paired differences of one group ('overall' or a family) of two models' trials."""
    shared = [k for k in a.keys() & b.keys() if group in ("overall", a[k][0])]
    attacked = [(a[k][1], b[k][1]) for k in shared if k[1] == "attacked"]
    clean = [(a[k][1], b[k][1]) for k in shared if k[1] == "clean"]
    useful = [
        (ua, ub)
        for k in shared
        if k[1] == "clean" and (ua := a[k][2]) is not None and (ub := b[k][2]) is not None
    ]
    return {
        "attack_success_paired": PairedOut.of(paired_difference(attacked)),
        "clean_failure_paired": PairedOut.of(paired_difference(clean)),
        "utility_paired": PairedOut.of(paired_difference(useful)),
    }


def _audit(stored: str) -> Audit | None:
    """The stored audit of a model file; None for an endpoint or an unreadable record."""
    try:
        return Audit.model_validate_json(stored) if stored else None
    except ValueError:  # pydantic's ValidationError: written by another version, or edited
        return None
