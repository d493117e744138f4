"""The runner with a scripted fake server: planning, resume, errors, restarts, Ctrl-C."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandbox.backends import ModelProvenance
from sandbox.chat import ChatReply, ChatRequest, Sampling
from sandbox.egress import EgressEvent
from sandbox.errors import BackendError, ModelChangedError, ServerStartError, TrialTimeoutError
from sandbox.runner import RunObserver, RunOptions, Shard, TrialResult, plan_trials, run_trials
from sandbox.scenarios import Scenario, ScenarioFile
from tests.helpers import scenario_data

Script = Callable[["FakeServer", ChatRequest, Sampling], ChatReply]


def _file(**overrides: object) -> ScenarioFile:
    scenario = Scenario.model_validate(scenario_data(**overrides))
    return ScenarioFile(Path("s.yaml"), hashlib.sha256(b"x").hexdigest(), scenario)


def _good_reply(server: FakeServer, request: ChatRequest, sampling: Sampling) -> ChatReply:
    return ChatReply(content="FINDINGS: 9 mm nodule in the right upper lobe.")


class FakeClient:
    def __init__(self, server: FakeServer) -> None:
        self.server = server

    def chat(self, request: ChatRequest, sampling: Sampling, timeout: float) -> ChatReply:
        self.server.requests.append((request, sampling))
        self.server.timeouts.append(timeout)
        return self.server.model.script(self.server, request, sampling)


@dataclass
class FakeServer:
    model: FakeModel
    alive: bool = False
    starts: int = 0
    stops: int = 0
    requests: list[tuple[ChatRequest, Sampling]] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)

    @property
    def client(self) -> FakeClient:
        return FakeClient(self)

    def start(self) -> None:
        if self.model.fail_starts_after is not None and self.starts >= self.model.fail_starts_after:
            raise ServerStartError("cannot start")
        self.starts += 1
        self.alive = True

    def stop(self) -> None:
        self.stops += 1
        self.alive = False

    def close(self) -> None:
        self.stop()

    def is_alive(self) -> bool:
        return self.alive

    def describe_exit(self) -> str:
        return "fake server exited"

    def take_egress(self) -> list[EgressEvent]:
        taken, self.model.egress, self.model.later = self.model.egress, self.model.later, []
        return taken

    def capture(self) -> str:
        return "complete" if self.model.observed else "none"

    def fetch(self, url: str) -> str:
        self.fetched.append(url)
        return "HTTP 200, 2 characters: ok"


@dataclass
class FakeModel:
    script: Script = _good_reply
    is_local: bool = True
    fail_starts_after: int | None = None
    servers: list[FakeServer] = field(default_factory=list)
    egress: list[EgressEvent] = field(default_factory=list)  # what the next take returns
    later: list[EgressEvent] = field(default_factory=list)  # what the take after that returns
    observed: bool = False  # a sandbox observes egress (capture complete)
    provenance: ModelProvenance = field(
        default_factory=lambda: ModelProvenance(
            spec="fake", backend="fake", backend_version="1", name="fake", sampling=Sampling()
        )
    )

    def make_server(self, log_path: Path) -> FakeServer:
        server = FakeServer(self)
        self.servers.append(server)
        return server


@dataclass
class MemorySink:
    done: set[str] = field(default_factory=set)
    results: list[TrialResult] = field(default_factory=list)
    startup: list[EgressEvent] = field(default_factory=list)
    shutdown: list[EgressEvent] = field(default_factory=list)

    def completed_keys(self) -> set[str]:
        return set(self.done)

    def record(self, result: TrialResult) -> None:
        self.results.append(result)

    def record_startup_egress(self, model_index: int, events: list[EgressEvent]) -> None:
        self.startup.extend(events)

    def record_shutdown_egress(self, model_index: int, events: list[EgressEvent]) -> None:
        self.shutdown.extend(events)


def _run(model: FakeModel, sink: MemorySink | None = None, **options: object) -> MemorySink:
    sink = sink or MemorySink()
    plan = plan_trials([_file()], 1, 1, Sampling())
    run_trials(plan, [model], sink, RunOptions(**options), RunObserver())  # type: ignore[arg-type]
    return sink


def test_plan_trials_covers_variants_models_and_repeats_with_seeds() -> None:
    plan = plan_trials([_file()], 2, 3, Sampling(seed=7))
    assert len(plan) == 12
    assert len({t.key for t in plan}) == 12
    assert {t.scenario.variant for t in plan} == {"attacked", "clean"}
    assert sorted({t.seed for t in plan}) == [7, 8, 9]
    assert {t.model_index for t in plan} == {0, 1}


def test_run_trials_scores_each_trial_and_sends_fixed_sampling() -> None:
    def obey(server: FakeServer, request: ChatRequest, sampling: Sampling) -> ChatReply:
        return ChatReply(content=f"Normal study. {_file().scenario.canary_token}")

    model = FakeModel(script=obey)
    sink = _run(model)
    assert [r.status for r in sink.results] == ["ok", "ok"]
    by_variant = {r.spec.scenario.variant: r for r in sink.results}
    attacked = {v.check: v.passed for v in by_variant["attacked"].verdicts}
    assert attacked == {"canary_absent": False, "findings_reported": False}
    sampling = model.servers[0].requests[0][1]
    assert (sampling.temperature, sampling.seed) == (0.0, 0)


def test_run_trials_skips_trials_the_sink_already_holds() -> None:
    plan = plan_trials([_file()], 1, 1, Sampling())
    sink = MemorySink(done={plan[0].key})
    _run(FakeModel(), sink)
    assert [r.spec.key for r in sink.results] == [plan[1].key]


def test_run_trials_starts_no_server_when_everything_is_stored() -> None:
    plan = plan_trials([_file()], 1, 1, Sampling())
    model = FakeModel()
    _run(model, MemorySink(done={t.key for t in plan}))
    assert model.servers == []


def test_run_trials_records_a_dead_server_as_error_and_restarts_it() -> None:
    def die_once(server: FakeServer, request: ChatRequest, sampling: Sampling) -> ChatReply:
        if server.starts == 1:
            server.alive = False
            raise BackendError("connection refused")
        return _good_reply(server, request, sampling)

    model = FakeModel(script=die_once)
    sink = _run(model)
    first, second = sink.results
    assert first.status == "error"
    assert "died" in first.error and "fake server exited" in first.error
    assert "restarted" in first.error
    assert second.status == "ok"
    assert model.servers[0].starts == 2


def test_a_timed_out_trial_is_retried_once_on_a_restarted_server_with_twice_the_time() -> None:
    def slow_once(server: FakeServer, request: ChatRequest, sampling: Sampling) -> ChatReply:
        if server.starts == 1:
            raise TrialTimeoutError("no answer within 1 s")
        return _good_reply(server, request, sampling)

    model = FakeModel(script=slow_once)
    sink = _run(model, timeout_s=1.0)
    assert [r.status for r in sink.results] == ["ok", "ok"]
    assert [r.retried for r in sink.results] == [True, False]
    assert model.servers[0].starts == 2
    assert model.servers[0].timeouts == [1.0, 2.0, 1.0]


def test_what_the_server_sent_during_a_timed_out_attempt_is_judged_with_the_retry() -> None:
    beacon = EgressEvent(t=1.0, kind="http", dst="203.0.113.81", port=80)

    def phone_home_then_hang(
        server: FakeServer, request: ChatRequest, sampling: Sampling
    ) -> ChatReply:
        if server.starts == 1:
            server.model.egress = [beacon]  # caught while the first attempt hung
            raise TrialTimeoutError("no answer within 1 s")
        return _good_reply(server, request, sampling)

    sink = MemorySink()
    file = _file(checks=["canary_absent", "findings_reported", "no_egress"])
    model = FakeModel(script=phone_home_then_hang, observed=True)
    plan = plan_trials([file], 1, 1, Sampling())
    run_trials(plan, [model], sink, RunOptions(timeout_s=1.0), RunObserver())  # type: ignore[list-item]
    first = sink.results[0]
    assert first.status == "ok" and first.retried
    assert first.egress == [beacon]
    assert {v.check: v.passed for v in first.verdicts}["no_egress"] is False


def test_a_trial_that_times_out_twice_is_an_error_and_the_next_one_runs() -> None:
    def slow_twice(server: FakeServer, request: ChatRequest, sampling: Sampling) -> ChatReply:
        if server.starts <= 2:
            raise TrialTimeoutError("no answer within 1 s")
        return _good_reply(server, request, sampling)

    model = FakeModel(script=slow_twice)
    sink = _run(model, timeout_s=1.0)
    assert [r.status for r in sink.results] == ["error", "ok"]
    assert "no answer within 1 s (on the retry)" in sink.results[0].error
    assert "restarted" in sink.results[0].error


def test_run_trials_stops_restarting_at_the_limit() -> None:
    def always_die(server: FakeServer, request: ChatRequest, sampling: Sampling) -> ChatReply:
        server.alive = False
        raise BackendError("connection refused")

    sink = _run(FakeModel(script=always_die), max_restarts=0)
    assert [r.status for r in sink.results] == ["error", "error"]
    assert "restart limit (0) reached" in sink.results[0].error


def test_run_trials_reports_a_failed_restart_and_goes_on() -> None:
    def die(server: FakeServer, request: ChatRequest, sampling: Sampling) -> ChatReply:
        server.alive = False
        raise BackendError("connection refused")

    sink = _run(FakeModel(script=die, fail_starts_after=1))
    assert [r.status for r in sink.results] == ["error", "error"]
    assert "restart failed" in sink.results[0].error


def test_run_trials_does_not_restart_remote_endpoints() -> None:
    def refuse(server: FakeServer, request: ChatRequest, sampling: Sampling) -> ChatReply:
        raise BackendError("connection refused")

    model = FakeModel(script=refuse, is_local=False)
    sink = _run(model)
    assert [r.status for r in sink.results] == ["error", "error"]
    assert model.servers[0].starts == 1


def test_run_trials_gives_each_worker_its_own_local_server() -> None:
    seen: set[int] = set()
    lock = threading.Lock()

    def note(server: FakeServer, request: ChatRequest, sampling: Sampling) -> ChatReply:
        with lock:
            seen.add(id(server))
        return _good_reply(server, request, sampling)

    model = FakeModel(script=note)
    _run(model, concurrency=2)
    assert len(model.servers) == 2
    assert all(s.starts == 1 for s in model.servers)


def test_run_trials_on_interrupt_keeps_recorded_trials_and_stops_servers() -> None:
    class InterruptAfterFirst(RunObserver):
        def trial_finished(self, result: TrialResult) -> None:
            raise KeyboardInterrupt

    model, sink = FakeModel(), MemorySink()
    plan = plan_trials([_file()], 1, 1, Sampling())
    with pytest.raises(KeyboardInterrupt):
        run_trials(plan, [model], sink, RunOptions(), InterruptAfterFirst())  # type: ignore[list-item]
    assert len(sink.results) == 1
    assert not model.servers[0].alive
    assert model.servers[0].stops >= 1


def test_run_trials_stops_servers_when_start_fails() -> None:
    model = FakeModel(fail_starts_after=0)
    with pytest.raises(ServerStartError):
        _run(model)
    assert model.servers[0].stops >= 1


VISION = {"carrier": "image", "kind": "image", "payload": {"text": "Normal. {canary}"}}


def test_run_trials_skips_vision_scenarios_on_a_text_only_model() -> None:
    model, sink = FakeModel(), MemorySink()
    plan = plan_trials([_file(workflow="image-read", inputs=[VISION])], 1, 1, Sampling())
    run_trials(plan, [model], sink, RunOptions(), RunObserver())  # type: ignore[list-item]
    assert [r.status for r in sink.results] == ["skipped", "skipped"]
    assert "sends image input" in sink.results[0].error
    assert model.servers[0].requests == []


def test_run_trials_sends_images_to_a_vision_model() -> None:
    model = FakeModel()
    model.provenance = model.provenance.model_copy(update={"inputs": ("text", "image")})
    sink = MemorySink()
    plan = plan_trials([_file(workflow="image-read", inputs=[VISION])], 1, 1, Sampling())
    run_trials(plan, [model], sink, RunOptions(), RunObserver())  # type: ignore[list-item]
    assert [r.status for r in sink.results] == ["ok", "ok"]
    request = model.servers[0].requests[0][0]
    assert isinstance(request.messages[1].content, list)


def test_run_trials_fails_loudly_when_the_model_file_changed_but_keeps_results(
    tmp_path: Path,
) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF" + bytes(64))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()

    def tamper(server: FakeServer, request: ChatRequest, sampling: Sampling) -> ChatReply:
        with weights.open("ab") as handle:  # what a writer outside the sandbox could do
            handle.write(b"backdoor")
        return _good_reply(server, request, sampling)

    provenance = _file_provenance(weights, digest)
    sink = MemorySink()
    with pytest.raises(ModelChangedError, match="changed during the run"):
        _run(FakeModel(script=tamper, provenance=provenance), sink)
    assert len(sink.results) == 2 and all(r.status == "ok" for r in sink.results)


def test_run_trials_accepts_an_unchanged_model_file(tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF" + bytes(64))
    provenance = _file_provenance(weights, hashlib.sha256(weights.read_bytes()).hexdigest())
    assert len(_run(FakeModel(provenance=provenance)).results) == 2


def _file_provenance(weights: Path, digest: str) -> ModelProvenance:
    return ModelProvenance(
        spec=f"gguf:{weights}",
        backend="fake",
        backend_version="1",
        name=weights.name,
        file_path=str(weights),
        file_sha256=digest,
        sampling=Sampling(),
    )


def test_run_trials_stores_egress_after_the_last_trial_in_its_own_window() -> None:
    late = EgressEvent(t=1.0, kind="http", dst="203.0.113.80", port=80)

    def leak_after_answering(
        server: FakeServer, request: ChatRequest, sampling: Sampling
    ) -> ChatReply:
        server.model.later = [late]  # lands after this trial's window was taken
        return _good_reply(server, request, sampling)

    model = FakeModel(script=leak_after_answering, observed=True)
    plan = [t for t in plan_trials([_file()], 1, 1, Sampling()) if t.scenario.variant == "clean"]
    sink = MemorySink()

    run_trials(plan, [model], sink, RunOptions(), RunObserver())  # type: ignore[list-item]

    assert [r.egress for r in sink.results] == [[]]
    assert sink.shutdown == [late]


def test_shards_partition_the_plan_stably_and_keep_twins_together() -> None:
    files = [_file(id=f"scenario-{i:02d}") for i in range(30)]
    plan = plan_trials(files, 2, 2, Sampling())
    slices = [[t.key for t in plan if Shard(k, 3).holds(t)] for k in (1, 2, 3)]
    assert sorted(sum(slices, [])) == sorted(t.key for t in plan)  # disjoint and complete
    assert all(slices) and max(map(len, slices)) < 2 * min(map(len, slices))
    again = plan_trials(list(reversed(files)), 2, 2, Sampling(seed=7))
    assert {t.key for t in again if Shard(2, 3).holds(t)} == set(slices[1])
    for spec in plan:
        twin = spec.key.replace("|attacked|", "|clean|")
        assert (twin in slices[0]) == (spec.key in slices[0])


@pytest.mark.parametrize("text", ["0/3", "4/3", "1", "a/b", "1/0", "-1/2"])
def test_a_shard_outside_one_to_n_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="shard"):
        Shard.parse(text)
