"""`sandbox.evaluate`: the whole of `sandbox run` as one library call.

It loads and validates the scenarios, prepares the models (hashing their files), chooses the
sandbox, opens the store, resumes the run with the same identity or begins one, runs what is
not stored yet, sets the run's status and returns the report. `sandbox run` is this call with a
progress bar and tables around it; a notebook, a CI script or a cluster worker calls it alike.

    from sandbox import evaluate

    result = evaluate("scenarios/hidden-text", models=["embedded"], max_tokens=64)
    print(result.status, result.attack_success().value)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sandbox import __version__
from sandbox.audit import audit_path
from sandbox.backends import (
    BACKENDS,
    ModelProvenance,
    PreparedModel,
    parse_model_spec,
    prepare_model,
    with_template,
)
from sandbox.backends.specs import AnySpec
from sandbox.carriers import check_buildable
from sandbox.chat import Sampling
from sandbox.errors import SandboxError, ScenarioError
from sandbox.isolation.base import IsolationName
from sandbox.isolation.select import choose_isolation
from sandbox.paths import default_db_url, results_dir
from sandbox.report.collect import build_report
from sandbox.report.model import RateOut, Report
from sandbox.runner import (
    RunObserver,
    RunOptions,
    RunOutcome,
    Shard,
    TrialSpec,
    plan_trials,
    run_trials,
)
from sandbox.scenarios import ScenarioFile, load_scenarios
from sandbox.status import ExitCode, RunStatus
from sandbox.store import EgressSummary, RunConfig, RunHandle, Store, open_store
from sandbox.triggers import Outcome, Ranked, candidates, plan_sweep, rank, sweep_files

PathLike = str | Path


@dataclass(frozen=True)
class Evaluation:
    """What one `evaluate` call did and found: the run, its status and its report."""

    run_id: str
    status: RunStatus
    resumed: bool
    outcome: RunOutcome  # trials run now, resumed from the store, retried after a timeout
    errored: int  # trials of the whole run (not only this call) that ended in an error
    egress: EgressSummary
    report: Report
    db_url: str
    isolation: str
    waiting: int = 0  # planned trials of other shards not stored yet

    @property
    def exit_code(self) -> ExitCode:
        """0 complete (or this shard's slice done while others run), 3 otherwise."""
        if self.status is RunStatus.RUNNING and self.waiting and not self.errored:
            return ExitCode.OK
        return ExitCode.for_status(self.status)

    def attack_success(self, model: str | None = None) -> RateOut:
        """Attack success of one model (its spec or label; the only model when omitted)."""
        models = self.report.models
        if model is None and len(models) == 1:
            return models[0].overall.attack_success
        for entry in models:
            if model in (entry.label, entry.provenance.spec):
                return entry.overall.attack_success
        names = ", ".join(m.label for m in models)
        raise KeyError(f"no model {model!r} in this evaluation (models: {names})")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the run; finished trials are stored in `run_id`."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


class EvaluationObserver(RunObserver):
    """The runner's progress callbacks plus the two steps before the first trial."""

    def preparing(self, models: int) -> None:
        """Model files are being assembled and hashed (seconds to minutes for large ones)."""

    def run_started(self, run_id: str, resumed: bool, shape: str) -> None:
        """The run exists in the store; `shape` says what it is made of, in words."""


def evaluate(
    scenarios: PathLike | Sequence[PathLike],
    models: str | Sequence[str] = ("embedded",),
    *,
    templates: Sequence[str] = (),
    repeat: int = 1,
    concurrency: int = 1,
    db: str | None = None,
    resume: bool = True,
    max_tokens: int = 512,
    seed: int = 0,
    timeout_s: float | None = None,
    isolation: IsolationName = "auto",
    allow_startup_egress: bool = False,
    gpus: str = "all",
    shard: Shard | None = None,
    observer: EvaluationObserver | None = None,
) -> Evaluation:
    """Run scenarios and their clean twins against models in the sandbox; see the module doc.

    `scenarios` are files or folders of them; `models` are specs as `sandbox run --model` takes
    them; each of `templates` ('reference' or a template file) adds every model again, served
    with that chat template, right after the model itself; `db` is a SQLAlchemy URL (default:
    results/sandbox.db). `timeout_s=None` scales the per-request limit to the speed measured.
    `shard` runs one slice of the plan: every shard of the same command joins one run, and the
    run is complete when the last slice is stored.
    Raises `SandboxError` for anything the user can fix and `Interrupted` on Ctrl-C, after
    marking the run interrupted.
    """
    if shard is not None and not resume:
        raise ValueError("the shards of a run resume one another; a sharded run cannot be fresh")
    files = load_or_fail(_paths(scenarios))
    sampling = Sampling(max_tokens=max_tokens, seed=seed)
    specs = [parse_model_spec(m) for m in ([models] if isinstance(models, str) else models)]
    specs = [arm for s in specs for arm in [s, *(with_template(s, t) for t in templates)]]
    return _execute(
        files,
        specs,
        sampling,
        lambda count: plan_trials(files, count, repeat, sampling),
        _Setup(repeat, concurrency, db, resume, timeout_s, isolation, allow_startup_egress, gpus),
        shard=shard,
        observer=observer,
    )


@dataclass(frozen=True)
class _Setup:
    """How a run is set up, as `evaluate` and `sweep_triggers` are asked."""

    repeat: int
    concurrency: int
    db: str | None
    resume: bool
    timeout_s: float | None
    isolation: IsolationName
    allow_startup_egress: bool
    gpus: str


def _execute(
    files: Sequence[ScenarioFile],
    specs: Sequence[AnySpec],
    sampling: Sampling,
    plan_for: Callable[[int], list[TrialSpec]],
    setup: _Setup,
    *,
    shard: Shard | None = None,
    observer: EvaluationObserver | None = None,
    identity: Mapping[str, object] | None = None,
    shape: str | None = None,
) -> Evaluation:
    """Prepare and audit the models, open or resume the run, run the plan, report.

    `plan_for(model_count)` is the plan; `identity` adds what else makes the run itself (the
    triggers of a sweep) and `shape` says in words what the run is made of.
    """
    observer = observer or EvaluationObserver()
    db_url = setup.db or default_db_url()
    store = open_store(db_url)  # a wrong --db fails before any sandbox is probed
    try:
        local = any(BACKENDS[s.kind].sandboxed for s in specs)
        sandbox = choose_isolation(setup.isolation, local, setup.gpus)
        observer.preparing(len(specs))
        threads = max(1, len(os.sched_getaffinity(0)) // max(1, setup.concurrency))
        allow = setup.allow_startup_egress
        prepared = [prepare_model(s, sampling, threads, allow) for s in specs]
        prepared = [_audited(m) for m in prepared]
        prepared, images = sandbox.stamp(prepared)
        models = [m.provenance for m in prepared]
        key = _Identity(files, models, setup.repeat, sandbox.name, images, dict(identity or {}))
        options: dict[str, object] = {
            "concurrency": setup.concurrency,
            "timeout_s": setup.timeout_s,
        }
        options.update(images)
        options["allow_startup_egress"] = allow
        options.update(identity or {})
        handle = store.begin_run(key.config(options), resume=setup.resume, shared=bool(shard))
        shape = (shape or key.shape()) + (f", shard {shard}" if shard else "")
        observer.run_started(handle.run_id, handle.resumed, shape)
        logs = results_dir() / "logs" / handle.run_id
        run_options = RunOptions(
            setup.concurrency,
            setup.timeout_s,
            log_dir=logs,
            isolation=sandbox,
            run_id=handle.run_id,
        )
        plan = plan_for(len(prepared))
        mine = [t for t in plan if shard.holds(t)] if shard else plan
        outcome = _run_and_mark(
            store, handle.run_id, lambda: run_trials(mine, prepared, handle, run_options, observer)
        )
        return _finish(store, handle, outcome, {t.key for t in plan}, db_url, sandbox.name)
    finally:
        store.engine.dispose()


@dataclass(frozen=True)
class Sweep:
    """What one `sweep_triggers` call did and found: the run and the ranked candidates."""

    evaluation: Evaluation
    ranked: list[Ranked]

    @property
    def above_chance(self) -> list[Ranked]:
        """The candidates whose change is above chance (never a control)."""
        return [r for r in self.ranked if r.above_chance]

    @property
    def exit_code(self) -> ExitCode:
        """3 for an incomplete run, 4 when a trigger is above chance, else 0."""
        if code := self.evaluation.exit_code:
            return code
        return ExitCode.THRESHOLD if self.above_chance else ExitCode.OK


def sweep_triggers(
    scenarios: PathLike | Sequence[PathLike],
    model: str = "embedded",
    *,
    triggers: Sequence[str] = (),
    repeat: int = 1,
    db: str | None = None,
    resume: bool = True,
    max_tokens: int = 512,
    seed: int = 0,
    temperature: float = 0.0,
    timeout_s: float | None = None,
    isolation: IsolationName = "auto",
    gpus: str = "all",
    observer: EvaluationObserver | None = None,
) -> Sweep:
    """Plant each candidate trigger in the scenarios' payload places and rank the changes.

    `triggers` are catalogue ids or texts of one's own (default: the whole catalogue); the
    controls always run. Each scenario's clean twin is the untriggered prompt, run once per
    repeat; repeat i samples with seed+i (at temperature 0 the repeats agree, so give
    `temperature` to sample). The run is stored and resumes like `evaluate`'s.
    """
    files = load_or_fail(_paths(scenarios))  # every attacked scenario has a payload place
    chosen = candidates(triggers)
    sampling = Sampling(temperature=temperature, max_tokens=max_tokens, seed=seed)
    evaluation = _execute(
        sweep_files(files, chosen),
        [parse_model_spec(model)],
        sampling,
        lambda _: plan_sweep(files, chosen, repeat, sampling),
        _Setup(repeat, 1, db, resume, timeout_s, isolation, False, gpus),
        observer=observer,
        identity={"triggers": {t.id: t.text for t in chosen}, "sweep": "triggers"},
        shape=f"{len(files)} scenarios × ({len(chosen)} candidates + untriggered) × "
        f"{repeat} repeat(s)",
    )
    store = open_store(evaluation.db_url, create=False)
    try:
        trials = store.trial_summaries(evaluation.run_id)
    finally:
        store.engine.dispose()
    outcomes = [
        Outcome(
            t.scenario_id,
            t.repeat,
            frozenset(v.check for v in t.verdicts if not v.passed),
            t.output,
            frozenset(v.check for v in t.verdicts),
        )
        for t in trials
        if t.status == "ok" and t.verdicts
    ]
    return Sweep(evaluation, rank(outcomes, chosen))


def _audited(model: PreparedModel) -> PreparedModel:
    """The model with `sandbox audit` of its file in its provenance (endpoints have none)."""
    path = model.provenance.file_path
    if not path:
        return model
    audit = audit_path(Path(path)).model_dump_json()
    return replace(model, provenance=model.provenance.model_copy(update={"audit_json": audit}))


def _run_and_mark(store: Store, run_id: str, run: Callable[[], RunOutcome]) -> RunOutcome:
    """Run the trials; an error marks the run failed, Ctrl-C marks it interrupted."""
    try:
        return run()
    except SandboxError:
        store.finish_run(run_id, RunStatus.FAILED)
        raise
    except KeyboardInterrupt:
        store.finish_run(run_id, RunStatus.INTERRUPTED)
        raise Interrupted(run_id) from None


def _finish(
    store: Store,
    handle: RunHandle,
    outcome: RunOutcome,
    planned: set[str],
    db_url: str,
    isolation: str,
) -> Evaluation:
    """Set the run's status from its stored trials and capture, and build its report.

    Planned trials not stored at all belong to other shards still running: the run stays
    `running`, and the shard that stores the last of them sets the status.
    """
    run_id = handle.run_id
    stored = handle.stored_statuses()
    errored = sum(status == "error" for status in stored.values())
    egress = store.egress_summary(run_id)
    waiting = len(planned - stored.keys())
    status = RunStatus.of(errored, egress.capture_complete) if not waiting else RunStatus.RUNNING
    if status is not RunStatus.RUNNING:
        store.finish_run(run_id, status)
    report = build_report(store, [run_id])
    return Evaluation(
        run_id,
        status,
        handle.resumed,
        outcome,
        errored,
        egress,
        report,
        db_url,
        isolation,
        waiting=waiting,
    )


def load_or_fail(paths: Sequence[Path]) -> list[ScenarioFile]:
    """Load scenarios; any invalid file stops the run with every problem listed."""
    loaded = load_scenarios(paths, check_buildable)
    if loaded.errors:
        problems = "\n".join(str(e) for e in loaded.errors)
        raise ScenarioError(
            f"{len(loaded.errors)} scenario file(s) are invalid:\n{problems}",
            hint="Fix them (see `sandbox scenarios validate`), then run again.",
        )
    if not loaded.files:
        raise ScenarioError(
            f"no scenario files (*.yaml) under {', '.join(map(str, paths))}.",
            hint="Pass a scenario file or a folder of them, e.g. scenarios/.",
        )
    return loaded.files


def _paths(scenarios: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(scenarios, str | Path):
        return [Path(scenarios)]
    return [Path(p) for p in scenarios]


@dataclass(frozen=True)
class _Identity:
    """What a run evaluates; the same identity resumes the same run."""

    files: Sequence[ScenarioFile]
    models: Sequence[ModelProvenance]
    repeat: int
    isolation: str
    images: dict[str, str]
    extra: dict[str, object] = field(default_factory=dict)  # e.g. a sweep's triggers

    def key(self) -> str:
        identity = {
            "scenarios": [(f.scenario.id, f.sha256) for f in self.files],
            "models": [m.model_dump(exclude={"file_path", "audit_json"}) for m in self.models],
            "repeat": self.repeat,
            "isolation": self.isolation,
            "images": self.images,
            **self.extra,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    def shape(self) -> str:
        """What the run is made of, in words."""
        return (
            f"{len(self.files)} scenarios × 2 variants × {len(self.models)} model(s) × "
            f"{self.repeat} repeat(s)"
        )

    def config(self, options: Mapping[str, object]) -> RunConfig:
        return RunConfig(
            key=self.key(),
            files=self.files,
            models=self.models,
            repeat=self.repeat,
            isolation=self.isolation,
            options=dict(options),
            tool_version=__version__,
            tool_commit=_git_commit(),
        )


def _git_commit() -> str:
    """The project's commit when run from a checkout, else ''."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
