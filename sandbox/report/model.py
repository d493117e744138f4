"""The report as data: what every report format (terminal, HTML, JSON, JUnit) renders.

It is plain pydantic so that the JSON report is this model dumped, with `schema_version`
telling readers which shape they hold. Every string in it may be hostile (model output,
scenario text, egress logs): renderers escape, never interpret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from sandbox.audit import Audit
from sandbox.report.metrics import Figures, ModelMetrics, PairedRate, Rate

REPORT_SCHEMA_VERSION = 1


class Out(BaseModel):
    """Base of the report models: immutable, no unknown keys, readable from store rows."""

    model_config = ConfigDict(extra="forbid", frozen=True, from_attributes=True)


class RateOut(Out):
    """k of n with its Wilson 95% interval; `value` is None when n is 0."""

    k: int
    n: int
    value: float | None
    low: float
    high: float

    @classmethod
    def of(cls, rate: Rate) -> RateOut:
        """The report form of a computed rate."""
        return cls(k=rate.k, n=rate.n, value=rate.value, low=rate.low, high=rate.high)


class FiguresOut(Out):
    """The figures of a group of trials (see `sandbox.report.metrics.Figures`)."""

    trials: int
    errors: int
    skipped: int
    attack_success: RateOut
    adjusted_attack_success: float | None
    clean_failure: RateOut
    utility_clean: RateOut
    utility_attacked: RateOut
    canary_leak: RateOut
    egress_trials: RateOut
    egress_events: int
    refusal: RateOut
    over_refusal: RateOut

    @classmethod
    def of(cls, f: Figures) -> FiguresOut:
        """The report form of computed figures."""
        return cls(
            trials=f.trials,
            errors=f.errors,
            skipped=f.skipped,
            attack_success=RateOut.of(f.attack_success),
            adjusted_attack_success=f.adjusted_attack_success,
            clean_failure=RateOut.of(f.clean_failure),
            utility_clean=RateOut.of(f.utility_clean),
            utility_attacked=RateOut.of(f.utility_attacked),
            canary_leak=RateOut.of(f.canary_leak),
            egress_trials=RateOut.of(f.egress_trials),
            egress_events=f.egress_events,
            refusal=RateOut.of(f.refusal),
            over_refusal=RateOut.of(f.over_refusal),
        )


class Provenance(Out):
    """What exactly was evaluated: the model file's hash, the backend, the image, sampling."""

    spec: str
    name: str
    backend: str
    backend_version: str
    file_sha256: str = Field(description="SHA-256 of the model file, or a folder's manifest hash.")
    chat_format: str
    image_id: str = Field(description="Docker image the server ran in ('' outside Docker).")
    sampling: dict[str, Any] = Field(description="Temperature, max tokens, seed...")
    audit: Audit | None = Field(
        None, description="`sandbox audit` of the model file at the run's start (None: endpoint)."
    )


class EgressDestination(Out):
    """How often something tried to reach one destination, by phase."""

    destination: str
    protocol: str
    startup: int
    trial: int
    shutdown: int = 0  # after the last trial's window, until the servers stopped


class ModelReport(Out):
    """One model of one run: provenance and figures overall, per family and per carrier."""

    key: str = Field(description="'RUN_ID#POSITION': unique across the report.")
    label: str = Field(description="What tables call it: the spec, with the run when needed.")
    run_id: str
    position: int
    provenance: Provenance
    overall: FiguresOut
    by_family: dict[str, FiguresOut]
    by_carrier: dict[str, FiguresOut]
    startup_egress: int
    egress_destinations: list[EgressDestination]


class ScenarioInfo(Out):
    """A scenario file as one run loaded it."""

    id: str
    title: str
    family: str
    workflow: str
    carrier: str
    path: str
    file_sha256: str
    canary: str


class RunInfo(Out):
    """A run's provenance: when, where, with which tool and options."""

    id: str
    created_at: datetime
    updated_at: datetime
    status: str
    isolation: str
    tool_version: str
    tool_commit: str
    repeat: int
    options: dict[str, Any]
    scenarios: list[ScenarioInfo]
    damage: str = Field(
        "", description="Why the stored trials do not add up (status 'damaged'); '' when they do."
    )


class PayloadOut(Out):
    """What the attacker planted, where and how."""

    carrier: str
    kind: str
    field: str | None
    technique: str | None
    transforms: list[str]
    text: str


class MessageOut(Out):
    """One message of the exact conversation."""

    role: str
    content: str


class ToolCallOut(Out):
    """A tool call, whether the policy allowed it, and what it returned."""

    name: str
    arguments: str
    allowed: bool
    result: str
    note: str


class EgressOut(Out):
    """A connection attempt the sandbox caught during the trial."""

    phase: str
    protocol: str
    destination: str
    hostname: str
    summary: str


class VerdictOut(Out):
    """A check's verdict with the evidence that decided it.

    Read alike from a check's `Verdict` and from the store's `VerdictRow` (`check_name`).
    """

    check: str = Field(validation_alias=AliasChoices("check", "check_name"))
    kind: str
    passed: bool
    label: str
    evidence: str
    detail: str


class TrialOut(Out):
    """One trial with everything needed to audit its verdicts."""

    id: int
    model_key: str
    scenario_id: str
    family: str
    carrier: str
    variant: str
    repeat: int
    seed: int
    status: str
    error: str
    capture: str
    duration_s: float
    finish_reason: str
    output: str
    payloads: list[PayloadOut]
    messages: list[MessageOut]
    tool_calls: list[ToolCallOut]
    egress: list[EgressOut]
    verdicts: list[VerdictOut]

    @property
    def failed(self) -> bool:
        """True when any verdict failed (an attack that worked, or a clean twin that failed)."""
        return any(not v.passed for v in self.verdicts)


class PairedOut(Out):
    """B − A over trials paired by scenario, variant, repeat and seed, with a 95% interval."""

    n: int = Field(description="Pairs: trials both models ran to a verdict.")
    value: float | None
    low: float
    high: float
    significant: bool = Field(description="The interval excludes 0.")

    @classmethod
    def of(cls, rate: PairedRate) -> PairedOut:
        """The report form of a computed paired difference."""
        return cls(
            n=rate.n, value=rate.value, low=rate.low, high=rate.high, significant=rate.significant
        )


class Difference(Out):
    """One family (or 'overall'): model B minus model A.

    Unpaired: the two rates and whether their intervals overlap. Paired (where both models ran
    the same trials): the difference over the pairs with Newcombe's interval, which is the one
    that decides, since the pairing removes what the scenarios themselves contribute.
    """

    group: str
    attack_success_a: RateOut
    attack_success_b: RateOut
    attack_success_diff: float | None
    attack_success_overlap: bool
    utility_a: RateOut
    utility_b: RateOut
    utility_diff: float | None
    utility_overlap: bool
    attack_success_paired: PairedOut
    clean_failure_paired: PairedOut
    utility_paired: PairedOut


class Comparison(Out):
    """Model B against model A, per family and overall.

    A is the first model of the report, except for a model served with another chat template
    (`--template`), whose A is the same weights with their own template: the template
    differential.
    """

    model_a: str
    model_b: str
    groups: list[Difference]


class Report(Out):
    """Everything one `sandbox report` shows."""

    schema_version: int = REPORT_SCHEMA_VERSION
    generated_at: datetime
    tool_version: str
    runs: list[RunInfo]
    models: list[ModelReport]
    comparisons: list[Comparison]
    trials: list[TrialOut]


def model_figures(
    metrics: ModelMetrics,
) -> tuple[FiguresOut, dict[str, FiguresOut], dict[str, FiguresOut]]:
    """Overall, per-family and per-carrier figures of one model, as report data."""
    return (
        FiguresOut.of(metrics.overall),
        {k: FiguresOut.of(v) for k, v in metrics.by_family.items()},
        {k: FiguresOut.of(v) for k, v in metrics.by_carrier.items()},
    )
