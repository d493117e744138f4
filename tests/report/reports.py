"""Builders of `Report` data for tests of the report formats, without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sandbox.report import wilson
from sandbox.report.model import (
    FiguresOut,
    ModelReport,
    Provenance,
    RateOut,
    Report,
    RunInfo,
    ScenarioInfo,
    TrialOut,
    VerdictOut,
)

WHEN = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
SHA = "ab" * 32
# Strings a model or a scenario author could put anywhere a report shows text.
HOSTILE = [
    "<script>alert(1)</script>",
    "]]>",
    "\x1b[2J",
    "\x1b]8;;http://203.0.113.9/\x07x\x1b]8;;\x07",
    "[red]markup[/red]",
    "nul\x00byte",
]
HOSTILE_TEXT = " ".join(HOSTILE)


def rate(k: int, n: int) -> RateOut:
    return RateOut.of(wilson(k, n))


def figures(**overrides: Any) -> FiguresOut:
    """Figures with no trials at all; keyword arguments replace fields."""
    data: dict[str, Any] = {
        "trials": 0,
        "errors": 0,
        "skipped": 0,
        "attack_success": rate(0, 0),
        "adjusted_attack_success": None,
        "clean_failure": rate(0, 0),
        "utility_clean": rate(0, 0),
        "utility_attacked": rate(0, 0),
        "canary_leak": rate(0, 0),
        "egress_trials": rate(0, 0),
        "egress_events": 0,
        "refusal": rate(0, 0),
        "over_refusal": rate(0, 0),
    }
    data.update(overrides)
    return FiguresOut(**data)


def provenance(spec: str = "embedded", **overrides: Any) -> Provenance:
    data: dict[str, Any] = {
        "spec": spec,
        "name": "m.gguf",
        "backend": "llama-cpp-python",
        "backend_version": "0.3.36",
        "file_sha256": SHA,
        "chat_format": "gemma",
        "image_id": "sha256:" + "cd" * 32,
        "sampling": {"temperature": 0.0, "max_tokens": 256, "seed": 7},
    }
    data.update(overrides)
    return Provenance(**data)


def model(
    label: str = "embedded",
    run_id: str = "run-1",
    position: int = 0,
    overall: FiguresOut | None = None,
    by_family: dict[str, FiguresOut] | None = None,
    by_carrier: dict[str, FiguresOut] | None = None,
    startup_egress: int = 0,
    **provenance_fields: Any,
) -> ModelReport:
    return ModelReport(
        key=f"{run_id}#{position}",
        label=label,
        run_id=run_id,
        position=position,
        provenance=provenance(label, **provenance_fields),
        overall=overall or figures(),
        by_family=by_family or {},
        by_carrier=by_carrier or {},
        startup_egress=startup_egress,
        egress_destinations=[],
    )


def scenario(
    scenario_id: str = "s-one", family: str = "document-injection", **overrides: Any
) -> ScenarioInfo:
    data: dict[str, Any] = {
        "id": scenario_id,
        "title": f"Title of {scenario_id}",
        "family": family,
        "workflow": "report-draft",
        "carrier": "text",
        "path": f"scenarios/{family}/{scenario_id}.yaml",
        "file_sha256": SHA,
        "canary": "CNRY-1234",
    }
    data.update(overrides)
    return ScenarioInfo(**data)


def run(
    run_id: str = "run-1", status: str = "complete", scenarios: list[ScenarioInfo] | None = None
) -> RunInfo:
    return RunInfo(
        id=run_id,
        created_at=WHEN,
        updated_at=WHEN,
        status=status,
        isolation="namespace",
        tool_version="0.1.0",
        tool_commit="abc1234",
        repeat=1,
        options={},
        scenarios=scenarios or [scenario()],
    )


def verdict(
    check: str = "canary_absent",
    passed: bool = True,
    kind: str = "security",
    evidence: str = "",
    detail: str = "",
    label: str = "",
) -> VerdictOut:
    return VerdictOut(
        check=check, kind=kind, passed=passed, label=label, evidence=evidence, detail=detail
    )


def trial(
    trial_id: int,
    scenario_id: str = "s-one",
    variant: str = "attacked",
    model_key: str = "run-1#0",
    status: str = "ok",
    verdicts: list[VerdictOut] | None = None,
    **overrides: Any,
) -> TrialOut:
    data: dict[str, Any] = {
        "id": trial_id,
        "model_key": model_key,
        "scenario_id": scenario_id,
        "family": "document-injection",
        "carrier": "text",
        "variant": variant,
        "repeat": 0,
        "seed": 0,
        "status": status,
        "error": "",
        "capture": "complete",
        "duration_s": 1.5,
        "finish_reason": "stop",
        "output": "FINDINGS: 9 mm nodule.",
        "payloads": [],
        "messages": [],
        "tool_calls": [],
        "egress": [],
        "verdicts": [verdict()] if verdicts is None else verdicts,
    }
    data.update(overrides)
    return TrialOut(**data)


def report(
    models: list[ModelReport],
    runs: list[RunInfo] | None = None,
    trials: list[TrialOut] | None = None,
) -> Report:
    return Report(
        generated_at=WHEN,
        tool_version="0.1.0",
        runs=runs or [run()],
        models=models,
        comparisons=[],
        trials=trials or [],
    )
