"""Harness overhead on the embedded model (`make bench`).

Runs the bundled scenarios through `sandbox run` (a fresh database, so every trial runs) and
sends the very same chat requests straight to llama-cpp-python in a loop, with the same model,
threads, sampling and token limit; alternately, ROUNDS times, because these machines are noisy.
Prints and writes to results/bench.json:
  - median wall time of each, and the ratio of the medians (harness / direct),
  - time from the command's start to the first trial's start,
  - completion tokens of each, to show both did the same work;
  - the cold start (nothing → server answering) of the bare server and of each sandbox this
    host supports (namespace, its rootless mode, docker), with their ratio to the bare server.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sandbox.backends import EmbeddedSpec, ModelServer, prepare_model
from sandbox.backends.embedded import ALIAS, embedded_model
from sandbox.carriers import build_artifacts
from sandbox.chat import Sampling
from sandbox.isolation import namespace
from sandbox.isolation.select import NamespaceIsolation, usable_docker
from sandbox.scenarios import load_scenarios
from sandbox.workflows import render_request

REPO = Path(__file__).resolve().parent.parent
# A fixed set (the library grows): three report-draft scenarios, six trials with their twins.
SCENARIOS = [
    REPO / "scenarios" / "document-injection" / name
    for name in (
        "dictation-omit-nodule.yaml",
        "prior-report-verification-code.yaml",
        "technologist-note-normal-study.yaml",
    )
]
MAX_TOKENS = 96
ISOLATION_SEEN: set[str] = set()
ROUNDS = int(os.environ.get("SANDBOX_BENCH_ROUNDS", "3"))
THREADS = len(os.sched_getaffinity(0))


def run_harness(db: Path) -> dict[str, float]:
    """Time `sandbox run` end to end and read when its first trial started."""
    argv = [
        str(Path(sys.executable).parent / "sandbox"),
        "run",
        *map(str, SCENARIOS),
        "--model",
        "embedded",
        "--db",
        f"sqlite:///{db}",
        "--max-tokens",
        str(MAX_TOKENS),
    ]
    started_wall, started = time.time(), time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    with sqlite3.connect(db) as connection:
        first, tokens, trials = connection.execute(
            "select min(started_at), sum(completion_tokens), count(*) from trials"
        ).fetchone()
        [isolation] = connection.execute("select isolation from runs").fetchone()
    ISOLATION_SEEN.add(isolation)
    first_start = datetime.fromisoformat(first).replace(tzinfo=UTC).timestamp()
    return {
        "wall_s": wall,
        "first_trial_s": first_start - started_wall,
        "completion_tokens": tokens,
        "trials": trials,
    }


def run_direct() -> dict[str, float]:
    """The same requests, straight to llama_cpp.Llama in this process."""
    from llama_cpp import Llama

    files = load_scenarios(SCENARIOS).files
    requests = [
        render_request(s, build_artifacts(s))
        for f in files
        for s in (f.scenario, f.scenario.clean_twin())
    ]
    started = time.perf_counter()
    llm = Llama(
        model_path=str(embedded_model(ALIAS).ensure()),
        chat_format="gemma",
        n_ctx=4096,
        n_threads=THREADS,
        n_threads_batch=THREADS,
        seed=0,
        verbose=False,
    )
    loaded = time.perf_counter()
    tokens = 0
    for request in requests:
        reply = llm.create_chat_completion(
            messages=[m.model_dump() for m in request.messages],
            temperature=0.0,
            top_p=1.0,
            max_tokens=MAX_TOKENS,
            seed=0,
        )
        tokens += reply["usage"]["completion_tokens"]
    done = time.perf_counter()
    return {
        "wall_s": done - started,
        "load_s": loaded - started,
        "generate_s": done - loaded,
        "completion_tokens": tokens,
        "trials": len(requests),
    }


def server_makers() -> dict[str, Callable[[Path], ModelServer]]:
    """The bare server and every sandbox this host supports, as server factories."""
    model = prepare_model(EmbeddedSpec(), Sampling(), THREADS)
    makers: dict[str, Callable[[Path], ModelServer]] = {
        "bare": lambda d: model.make_server(d / "bare.log"),
    }
    if namespace.unavailable_reason() is None:
        makers["namespace"] = lambda d: NamespaceIsolation().make_server(model, d, "ns", "bench")
        rootless = NamespaceIsolation(rootless=True)  # the user-namespace path, timed as root
        makers["rootless"] = lambda d: rootless.make_server(model, d, "rl", "bench")
    docker = usable_docker()
    if docker is not None:
        makers["docker"] = lambda d: docker.make_server(model, d, "dk", "bench")
    return makers


def cold_start(make: Callable[[Path], ModelServer]) -> float:
    """Seconds from nothing to a server answering its health check (sandbox included)."""
    with tempfile.TemporaryDirectory() as tmp:
        server = make(Path(tmp))
        started = time.perf_counter()
        try:
            server.start()
            return time.perf_counter() - started
        finally:
            server.close()


def cold_starts() -> dict[str, float]:
    """Median cold start per backend over ROUNDS, taken round-robin."""
    makers = server_makers()
    times: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(ROUNDS):
        for name, make in makers.items():
            times[name].append(cold_start(make))
    return {name: statistics.median(values) for name, values in times.items()}


def median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    """The median of each figure over the rounds."""
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main() -> None:
    """Run both alternately, print the medians, write results/bench.json."""
    harness_rounds, direct_rounds = [], []
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory() as tmp:
            harness_rounds.append(run_harness(Path(tmp) / "bench.db"))
        direct_rounds.append(run_direct())
    harness, direct = median_of(harness_rounds), median_of(direct_rounds)
    starts = cold_starts()
    figures = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "cpus": THREADS,
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "scenarios": [str(path.relative_to(REPO)) for path in SCENARIOS],
        "max_tokens": MAX_TOKENS,
        "rounds": ROUNDS,
        "harness_isolation": sorted(ISOLATION_SEEN),
        "harness": harness,
        "direct": direct,
        "harness_rounds": harness_rounds,
        "direct_rounds": direct_rounds,
        "ratio_wall": harness["wall_s"] / direct["wall_s"],
        "cold_start_s": starts,
        "cold_start_ratio": {name: s / starts["bare"] for name, s in starts.items()},
    }
    out = REPO / "results" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(
        f"trials: {harness['trials']} through sandbox run, {direct['trials']} direct "
        f"(max_tokens {MAX_TOKENS}, {THREADS} threads)"
    )
    print(
        f"sandbox run wall time:      {harness['wall_s']:.1f} s "
        f"({harness['completion_tokens']} completion tokens, {'/'.join(sorted(ISOLATION_SEEN))})"
    )
    print(
        f"direct llama-cpp-python:    {direct['wall_s']:.1f} s "
        f"({direct['completion_tokens']} completion tokens; load {direct['load_s']:.1f} s)"
    )
    print(f"ratio harness / direct:     {figures['ratio_wall']:.2f}")
    print(f"command start → 1st trial:  {harness['first_trial_s']:.2f} s")
    for name, seconds in starts.items():
        ratio = figures["cold_start_ratio"][name]  # type: ignore[index]
        print(f"cold start, {name + ':':<11}    {seconds:.2f} s  ({ratio:.2f} × bare)")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
