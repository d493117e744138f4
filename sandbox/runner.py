"""Plan trials (scenario × variant × model × repeat) and run them with bounded concurrency.

The runner never prints and never touches the database: results go to a ResultSink (the store
implements it), progress to a RunObserver (the CLI draws a progress bar). Trials the sink already
holds are skipped, so rerunning the same command resumes. An infrastructure failure becomes an
errored trial; Ctrl-C stops the servers, keeps what was recorded and re-raises.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

from sandbox.backends import ModelProvenance, ModelServer, PreparedModel
from sandbox.backends.prepare import verify_unchanged
from sandbox.carriers import build_artifacts
from sandbox.chat import ChatReply, ChatRequest, Message, Sampling
from sandbox.conversation import converse
from sandbox.deadline import Deadline
from sandbox.detectors import Observation, Verdict, run_checks
from sandbox.egress import Capture, EgressEvent
from sandbox.errors import BackendError, SandboxError, ServerStartError, TrialTimeoutError
from sandbox.isolation.base import Isolation, NoIsolation
from sandbox.scenarios import Scenario, ScenarioFile
from sandbox.tools import ToolContext, ToolOutcome
from sandbox.workflows import missing_inputs, render_request

TrialStatus = Literal["ok", "error", "skipped"]
SHUTDOWN_LINGER_S = 0.5  # egress a server holds back past its last answer


@dataclass(frozen=True)
class TrialSpec:
    """One planned trial. `key` identifies it within a run, for resume."""

    key: str
    file: ScenarioFile
    scenario: Scenario
    model_index: int
    repeat: int
    seed: int


@dataclass
class TrialResult:
    """What one trial produced: the exchange and the verdicts, or the error that stopped it."""

    spec: TrialSpec
    model: ModelProvenance
    status: TrialStatus
    started_at: datetime
    duration_s: float
    request: ChatRequest | None = None
    reply: ChatReply | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    error: str = ""
    egress: list[EgressEvent] = field(default_factory=list)
    capture: Capture = "none"
    messages: list[Message] = field(default_factory=list)  # the whole conversation
    tool_outcomes: list[ToolOutcome] = field(default_factory=list)
    retried: bool = False  # timed out once, then ran again with twice the time


class ResultSink(Protocol):
    """Where results go; the store implements it."""

    def completed_keys(self) -> set[str]:
        """Keys of trials already stored without error."""

    def record(self, result: TrialResult) -> None:
        """Store one result (replacing an earlier errored attempt of the same key)."""

    def record_startup_egress(self, model_index: int, events: list[EgressEvent]) -> None:
        """Store what a model's servers tried to reach while starting."""

    def record_shutdown_egress(self, model_index: int, events: list[EgressEvent]) -> None:
        """Store what a model's servers tried to reach after the last trial's window."""


class RunObserver:
    """Progress callbacks; the default does nothing."""

    def model_started(self, model: ModelProvenance, planned: int, skipped: int) -> None:
        """Servers for `model` are up; `planned` trials, `skipped` of them already stored."""

    def trial_finished(self, result: TrialResult) -> None:
        """One trial was recorded."""


@dataclass(frozen=True)
class RunOptions:
    """How to run: concurrency, the request time limit (None: scaled) and restarts allowed."""

    concurrency: int = 1
    timeout_s: float | None = None
    max_restarts: int = 3
    log_dir: Path = Path("results/logs")
    isolation: Isolation = field(default_factory=NoIsolation)
    run_id: str = "adhoc"


@dataclass
class RunOutcome:
    """Counts of what this invocation did."""

    ran: int = 0
    skipped: int = 0
    errored: int = 0
    retried: int = 0  # trials that timed out once and were run again


def plan_trials(
    files: Sequence[ScenarioFile], model_count: int, repeat: int, sampling: Sampling
) -> list[TrialSpec]:
    """Every scenario and its clean twin, for each model and repeat, seeds fixed per repeat."""
    plan: list[TrialSpec] = []
    for model_index in range(model_count):
        for file in files:
            for scenario in (file.scenario, file.scenario.clean_twin()):
                for rep in range(repeat):
                    key = f"m{model_index}|{scenario.id}|{scenario.variant}|r{rep}"
                    plan.append(
                        TrialSpec(key, file, scenario, model_index, rep, sampling.seed + rep)
                    )
    return plan


@dataclass(frozen=True)
class Shard:
    """The K-th of N disjoint slices of a plan (1 <= K <= N), as `--shard K/N` names it.

    A trial's slice is a hash of its model, scenario and repeat, not of timing or order, so it
    is the same on every machine and every rerun; an attacked trial and its clean twin share a
    slice (and so a server, and their common prompt prefix).
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count}: K must be between 1 and N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """'2/3' -> Shard(2, 3); ValueError for anything else."""
        index, sep, count = text.partition("/")
        if not (sep and index.isdigit() and count.isdigit()):
            raise ValueError(f"shard {text!r} is not K/N (e.g. 2/3)")
        return cls(int(index), int(count))

    def holds(self, spec: TrialSpec) -> bool:
        """Whether the trial belongs to this slice."""
        twins = f"m{spec.model_index}|{spec.scenario.id}|r{spec.repeat}"
        digest = hashlib.sha256(twins.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def run_trials(
    plan: Sequence[TrialSpec],
    models: Sequence[PreparedModel],
    sink: ResultSink,
    options: RunOptions,
    observer: RunObserver | None = None,
) -> RunOutcome:
    """Run what the sink does not hold yet, one model at a time."""
    observer = observer or RunObserver()
    done = sink.completed_keys()
    outcome = RunOutcome()
    for index, model in enumerate(models):
        mine = [t for t in plan if t.model_index == index]
        todo = [t for t in mine if t.key not in done]
        outcome.skipped += len(mine) - len(todo)
        if not todo:
            observer.model_started(model.provenance, len(mine), len(mine))
            continue
        with _ServerPool(model, options, index, len(todo)) as pool:
            sink.record_startup_egress(index, pool.startup_egress)
            observer.model_started(model.provenance, len(mine), len(mine) - len(todo))
            _run_model(todo, model, pool, sink, options, observer, outcome)
        sink.record_shutdown_egress(index, pool.shutdown_egress)
        verify_unchanged(model.provenance)  # after the results are stored: they stay
    return outcome


def _run_model(
    todo: Sequence[TrialSpec],
    model: PreparedModel,
    pool: _ServerPool,
    sink: ResultSink,
    options: RunOptions,
    observer: RunObserver,
    outcome: RunOutcome,
) -> None:
    executor = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="trial")
    try:
        pending: set[Future[TrialResult]] = {
            executor.submit(pool.run, spec, model.provenance) for spec in todo
        }
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                result = future.result()
                sink.record(result)
                outcome.ran += 1
                outcome.errored += result.status == "error"
                outcome.retried += result.retried
                observer.trial_finished(result)
    except BaseException:
        pool.abort()  # in-flight requests fail fast; their results are dropped, not recorded
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


class _ServerPool:
    """Servers for one model, lent to worker threads one at a time; restarts dead ones."""

    def __init__(self, model: PreparedModel, options: RunOptions, index: int, trials: int) -> None:
        self.options = options
        self.local = model.is_local
        self.replicas = min(options.concurrency, trials) if self.local else 1
        self.servers = [
            options.isolation.make_server(
                model, options.log_dir, f"model{index}-server{i}", options.run_id
            )
            for i in range(self.replicas)
        ]
        self.startup_egress: list[EgressEvent] = []
        self.shutdown_egress: list[EgressEvent] = []  # drained when the pool closes
        self.idle: queue.Queue[ModelServer] = queue.Queue()
        self.restarts = 0
        self.deadline = Deadline(model.provenance.sampling.max_tokens, options.timeout_s)
        self.aborted = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> _ServerPool:
        try:
            for server in self.servers:
                server.start()
                self.startup_egress += server.take_egress()
        except BaseException:
            self.close()
            raise
        shares = self.options.concurrency if self.replicas == 1 else 1
        for server in self.servers:
            for _ in range(shares):
                self.idle.put(server)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drain what each sandbox saw since its last trial (after a short linger), then stop."""
        if not self.aborted.is_set() and any(s.capture() != "none" for s in self.servers):
            time.sleep(SHUTDOWN_LINGER_S)  # egress a server holds back until after its answer
        for server in self.servers:
            if not self.aborted.is_set():
                self.shutdown_egress += server.take_egress()
            server.close()

    def abort(self) -> None:
        """Stop everything now (Ctrl-C)."""
        self.aborted.set()
        for server in self.servers:
            server.stop()

    def run(self, spec: TrialSpec, provenance: ModelProvenance) -> TrialResult:
        """Run one trial on an idle server (called from worker threads)."""
        server = self.idle.get()
        try:
            return self._run_on(server, spec, provenance)
        finally:
            self.idle.put(server)

    def _run_on(
        self, server: ModelServer, spec: TrialSpec, provenance: ModelProvenance
    ) -> TrialResult:
        started, clock = datetime.now(UTC), time.monotonic()
        result = TrialResult(spec, provenance, "ok", started, 0.0)
        missing = missing_inputs(spec.scenario.workflow, provenance.inputs)
        if missing:
            result.status = "skipped"
            result.error = (
                f"workflow {spec.scenario.workflow} sends {', '.join(missing)} input; "
                f"{provenance.spec} takes {', '.join(provenance.inputs)} only"
            )
            return result
        try:
            self._attempt_twice(server, spec, provenance, result)
        except TrialTimeoutError as exc:
            note = self._restart(server, "timed out again and may still be generating")
            result.status, result.error = "error", f"{exc} (on the retry)\n{note}"
        except BackendError as exc:
            result.status, result.error = "error", self._explain(server, exc)
        except SandboxError as exc:
            result.status, result.error = "error", str(exc)
        if result.status == "error":
            result.egress, result.capture = _egress_after(server)
        result.duration_s = time.monotonic() - clock
        return result

    def _attempt_twice(
        self,
        server: ModelServer,
        spec: TrialSpec,
        provenance: ModelProvenance,
        result: TrialResult,
    ) -> None:
        """Attempt; after a time-out restart the server and attempt once more, with twice the time.

        The first attempt's egress stays with the trial and is judged with it: what the server
        did then is evidence too.
        """
        try:
            self._attempt(server, spec, provenance, result)
        except TrialTimeoutError:
            note = self._restart(server, "timed out and may still be generating")
            if not server.is_alive():
                raise BackendError(note) from None
            result.retried = True
            self._attempt(server, spec, provenance, result, 2.0, server.take_egress())

    def _attempt(
        self,
        server: ModelServer,
        spec: TrialSpec,
        provenance: ModelProvenance,
        result: TrialResult,
        scale: float = 1.0,
        earlier_egress: Sequence[EgressEvent] = (),
    ) -> None:
        """Build, render, converse, collect egress and score; exceptions are the caller's."""
        artifacts = build_artifacts(spec.scenario)
        result.request = render_request(spec.scenario, artifacts)
        if not server.is_alive():
            note = self._restart(server, "was not running before the trial")
            if not server.is_alive():
                raise BackendError(note)
        sampling = provenance.sampling.model_copy(update={"seed": spec.seed})
        context = ToolContext(spec.scenario, artifacts, server.fetch)
        talk = converse(
            server.client, spec.scenario, result.request, sampling, self.deadline, context, scale
        )
        result.reply, result.messages, result.tool_outcomes = (
            talk.output,
            talk.messages,
            talk.outcomes,
        )
        egress, result.capture = _egress_after(server)
        result.egress = [*earlier_egress, *egress]
        observation = Observation(
            spec.scenario,
            result.request,
            result.reply,
            result.egress,
            result.capture,
            result.tool_outcomes,
        )
        result.verdicts = run_checks(observation)

    def _explain(self, server: ModelServer, exc: BackendError) -> str:
        if self.aborted.is_set() or _stays_alive(server):
            return str(exc)
        exit_note = server.describe_exit()
        return f"model server died during the trial. {exit_note}\n{self._restart(server, 'died')}"

    def _restart(self, server: ModelServer, why: str) -> str:
        """Restart a local server (at most `max_restarts` per model); say what happened."""
        if self.aborted.is_set() or not self.local:
            return f"model server {why}."
        with self._lock:
            if self.restarts >= self.options.max_restarts:
                return f"model server {why}; restart limit ({self.options.max_restarts}) reached."
            self.restarts += 1
        try:
            server.start()
        except ServerStartError as exc:
            return f"model server {why}; restart failed: {exc}"
        return f"model server {why}; restarted it for the next trials."


def _egress_after(server: ModelServer) -> tuple[list[EgressEvent], Capture]:
    """What the sandbox saw up to the trial's end, and whether that record is whole.

    A sandbox waits until its sink has caught up with the end of the window (see events.py).
    """
    events = server.take_egress()
    return events, server.capture()


def _stays_alive(server: ModelServer, grace_s: float = 1.0) -> bool:
    """A killed server can still look alive for a moment after its socket broke: look again."""
    deadline = time.monotonic() + grace_s
    while server.is_alive():
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)
    return False
