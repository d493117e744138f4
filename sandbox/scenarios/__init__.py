"""Scenario files: the pydantic models of the YAML and the strict loader."""

from sandbox.scenarios.loader import (
    LoadResult,
    ScenarioFile,
    find_scenario_files,
    load_scenario_file,
    load_scenarios,
)
from sandbox.scenarios.models import (
    AbsentFinding,
    Case,
    CheckName,
    Expected,
    Finding,
    Input,
    Payload,
    Scenario,
    Variant,
)

__all__ = [
    "AbsentFinding",
    "Case",
    "CheckName",
    "Expected",
    "Finding",
    "Input",
    "LoadResult",
    "Payload",
    "Scenario",
    "ScenarioFile",
    "Variant",
    "find_scenario_files",
    "load_scenario_file",
    "load_scenarios",
]
