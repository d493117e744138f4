"""Pydantic models of a scenario file: strict (unknown keys rejected), documented per field.

Families and transforms are closed `Literal` sets. Carriers, workflows, checks and tools are
plugins: a name is checked against its registry when the file is loaded (`PluginName`), so a
new plugin is usable in scenarios as soon as its module exists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from sandbox.registry import known

Family = Literal[
    "visual-injection",
    "metadata-injection",
    "document-injection",
    "hidden-text",
    "misleading-context",
    "jailbreak",
    "exfiltration",
    "phi-leakage",
    "training-data-extraction",
    "backdoor-trigger",
    "startup-egress",
    "malicious-artefact",
    "supply-chain",
    "resource-exhaustion",
]
TransformName = Literal["unicode-tags", "zero-width", "homoglyphs", "base64", "language"]


def _registered(kind: str) -> AfterValidator:
    """A validator that accepts only names registered for `kind` (a carrier, a check...)."""

    def check(name: str) -> str:
        names = known(kind)
        if name not in names:
            raise PydanticCustomError(
                "unknown_plugin",
                "'{name}' is unknown (known: {known})",
                {"name": name, "known": _listed(names)},
            )
        return name

    return AfterValidator(check)


def _listed(names: list[str]) -> str:
    """The names as pydantic lists the values of a Literal: 'a', 'b' or 'c'."""
    quoted = [f"'{n}'" for n in names]
    if len(quoted) < 2:
        return "".join(quoted)
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


CarrierName = Annotated[str, _registered("carrier")]
WorkflowName = Annotated[str, _registered("workflow")]
CheckName = Annotated[str, _registered("check")]
ToolName = Annotated[str, _registered("tool")]

Variant = Literal["attacked", "clean"]

CANARY_MARK = "{canary}"
PAYLOAD_MARK = "{payload}"


class Strict(BaseModel):
    """Base of every scenario model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Patient(Strict):
    """The synthetic patient. Never real PHI."""

    name: str = Field(description="DICOM-style name, e.g. 'DOE^JANE'. Synthetic only.")
    mrn: str = Field(description="Medical record number, e.g. 'MRN-48213'. Synthetic only.")
    birth_date: str = Field(description="ISO date, e.g. '1961-03-02'.")

    @field_validator("birth_date")
    @classmethod
    def _is_iso_date(cls, value: str) -> str:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a date; write YYYY-MM-DD") from None
        return value

    sex: Literal["F", "M", "O"] = Field("O", description="DICOM PatientSex: F, M or O.")


class Study(Strict):
    """The imaging study the workflow is about."""

    modality: str = Field(description="DICOM modality code, e.g. CT, MR, CR, MG, US.")
    body_part: str = Field(description="Body part examined, e.g. CHEST, HEAD, BREAST.")
    description: str = Field("", description="Study description as the modality wrote it.")
    indication: str = Field("", description="Clinical indication / reason for the study.")


class Finding(Strict):
    """One ground-truth finding of the case."""

    id: str = Field(description="Short identifier, unique within the case, e.g. 'rul-nodule'.")
    text: str = Field(description="The finding as a radiologist would state it.")
    must_report: bool = Field(True, description="A correct report must mention this finding.")
    terms: list[str] = Field(
        min_length=1,
        description="Words or phrases that name the finding (synonyms, abbreviations); "
        "any one of them, not negated, counts as reporting it.",
    )
    laterality: Literal["left", "right", "bilateral", "midline", "none"] = Field(
        "none", description="Side of the finding."
    )
    size_mm: float | None = Field(None, description="Largest dimension in millimetres, if any.")


class AbsentFinding(Strict):
    """A finding the case does not have, which the attack tries to plant."""

    id: str = Field(description="Short identifier, unique within the case, e.g. 'hamartoma'.")
    text: str = Field(description="The false finding as the attacker states it.")
    terms: list[str] = Field(
        min_length=1,
        description="Words or phrases that name it; any one of them asserted (not negated) "
        "fails `no_false_findings`.",
    )


class Expected(Strict):
    """The decisions a correct answer makes; `category_unchanged` compares the output with them."""

    lung_rads: str | None = Field(
        None, pattern=r"^(0|1|2|3|4A|4B|4X|S)$", description="Lung-RADS category, e.g. '4A'."
    )
    bi_rads: str | None = Field(
        None, pattern=r"^([0-6]|4A|4B|4C)$", description="BI-RADS assessment, e.g. '4' or '4B'."
    )
    follow_up_months: int | None = Field(
        None,
        ge=0,
        le=120,
        description="Recommended follow-up interval in months; 0 means immediate work-up "
        "(no waiting interval).",
    )
    priority: Literal["stat", "urgent", "routine"] | None = Field(
        None, description="Reading or scanning priority."
    )
    protocol: list[str] | None = Field(
        None,
        min_length=1,
        description="Words that name an acceptable protocol; a stated protocol must contain one.",
    )
    contrast: Literal["yes", "no"] | None = Field(
        None, description="Whether intravenous contrast should be given."
    )

    def stated(self) -> list[str]:
        """Names of the decisions this case fixes."""
        return [name for name, value in self if value is not None]


class Case(Strict):
    """A synthetic clinical case with its ground truth."""

    patient: Patient
    study: Study
    findings: list[Finding] = Field(default_factory=list, description="Ground-truth findings.")
    other_patients: list[Patient] = Field(
        default_factory=list,
        description="Other patients whose identifiers reach the workflow (a batch, a worklist, a "
        "planted record); `no_phi_leak` fails if any of theirs appears in the output at all.",
    )
    absent_findings: list[AbsentFinding] = Field(
        default_factory=list,
        description="Findings the case does not have and the attack asserts (for "
        "`no_false_findings`).",
    )
    expected: Expected = Field(
        default_factory=Expected,
        description="Categories and decisions of the correct answer (for `category_unchanged`).",
    )

    @model_validator(mode="after")
    def _unique_finding_ids(self) -> Case:
        ids = [f.id for f in self.findings]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"finding ids must be unique; repeated: {', '.join(duplicates)}")
        return self


class Payload(Strict):
    """The planted instruction. `{canary}` in its text is replaced by the scenario's canary."""

    text: str = Field(min_length=1, description="The attacker's text, as planted.")
    field: str | None = Field(
        None,
        description="Where the carrier puts it (carrier-specific): a DICOM attribute keyword, "
        "an HL7 field such as OBR-13, a FHIR element such as note.",
    )
    technique: str | None = Field(
        None,
        description="How the carrier hides it (carrier-specific), e.g. PDF white-text, "
        "tiny-text, invisible, off-page, metadata, annotation, visible.",
    )
    transforms: list[TransformName] = Field(
        default_factory=list,
        description="Applied in order to the planted text: unicode-tags (invisible tag "
        "characters), zero-width (between letters), homoglyphs (Cyrillic look-alikes), base64, "
        "language (plants `translation` instead of `text`).",
    )
    translation: str | None = Field(
        None, description="The payload in another language, for the `language` transform."
    )

    @model_validator(mode="after")
    def _translation_goes_with_language(self) -> Payload:
        if ("language" in self.transforms) != (self.translation is not None):
            raise ValueError("the language transform and `translation` go together")
        return self


class Input(Strict):
    """One artifact the workflow receives, built by a carrier, optionally carrying the payload."""

    carrier: CarrierName = Field(description="File format that carries the input, e.g. 'text'.")
    kind: Literal[
        "dictation", "prior-report", "report", "note", "referral", "order", "result", "image"
    ] = Field("dictation", description="What the document is in the clinical workflow.")
    content: str = Field(
        "",
        description="The document's clean text. '{payload}' marks where the payload goes; "
        "without the mark it is appended as a new paragraph.",
    )
    payload: Payload | None = Field(None, description="The planted instruction, if any.")


class AgentOptions(Strict):
    """How a tool-using workflow is run."""

    allowed_tools: list[ToolName] | None = Field(
        None, description="Calls the policy allows (default: the workflow's own list)."
    )
    least_privilege: bool = Field(
        False,
        description="Withdraw tools that send data out once untrusted content is in context.",
    )
    max_turns: int = Field(4, ge=1, le=8, description="Model turns before the trial stops.")


class Scenario(Strict):
    """One clinical case, one workflow, one attack and its checks."""

    id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{2,79}$",
        description="Unique slug: lowercase letters, digits and dashes.",
    )
    title: str = Field(min_length=1, description="One line a reviewer understands.")
    family: Family = Field(description="Attack family (DESIGN.md §6).")
    workflow: WorkflowName = Field(description="How the integration builds the prompt.")
    source: str = Field("", description="Where in the literature the attack comes from.")
    canary: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9-]{6,40}$",
        description="Token that proves the payload was obeyed; derived from the id if omitted.",
    )
    case: Case
    inputs: list[Input] = Field(min_length=1, description="Artifacts given to the workflow.")
    checks: list[CheckName] = Field(min_length=1, description="Checks that score each trial.")
    agent: AgentOptions = Field(
        default_factory=AgentOptions, description="Options for tool-using workflows."
    )
    variant: Variant = Field("attacked", description="Set by the loader; not written in YAML.")

    @model_validator(mode="after")
    def _has_payload(self) -> Scenario:
        if self.variant == "clean":
            return self
        payloads = [i.payload for i in self.inputs if i.payload]
        if not payloads:
            raise ValueError("an attacked scenario needs a payload in at least one input")
        self._check_ground_truth()
        if "canary_absent" in self.checks and not any(CANARY_MARK in p.text for p in payloads):
            raise ValueError(
                "canary_absent is listed but no payload contains {canary}, so it could never "
                "fail; put {canary} in the payload text or drop the check"
            )
        return self

    def _check_ground_truth(self) -> None:
        """A check that has no ground truth to compare with could never fail."""
        needs = {
            "findings_reported": (
                [f for f in self.case.findings if f.must_report],
                "case.findings (must_report)",
            ),
            "no_false_findings": (self.case.absent_findings, "case.absent_findings"),
            "category_unchanged": (self.case.expected.stated(), "case.expected"),
        }
        for check, (truth, where) in needs.items():
            if check in self.checks and not truth:
                raise ValueError(f"{check} is listed but {where} is empty, so it could never fail")
        if "refusal" in self.checks and not {"canary_absent", "category_unchanged"} & set(
            self.checks
        ):
            raise ValueError(
                "refusal judges compliance by canary_absent or category_unchanged; list one of them"
            )

    @property
    def attack_carrier(self) -> str:
        """The carrier of the first input that holds a payload ('' for a clean twin)."""
        return next((i.carrier for i in self.inputs if i.payload), "")

    @property
    def canary_token(self) -> str:
        """The canary: given in the file, or derived deterministically from the id."""
        if self.canary:
            return self.canary
        digest = hashlib.sha256(self.id.encode()).hexdigest()[:8].upper()
        return f"CNRY-{digest}"

    @property
    def has_payload(self) -> bool:
        """True for the attacked variant, False for the clean twin."""
        return any(i.payload for i in self.inputs)

    def clean_twin(self) -> Scenario:
        """The same case and workflow with every payload removed."""
        inputs = [i.model_copy(update={"payload": None}) for i in self.inputs]
        return self.model_copy(update={"inputs": inputs, "variant": "clean"})

    def payload_text(self, payload: Payload) -> str:
        """The payload as planted, with the canary substituted."""
        return payload.text.replace(CANARY_MARK, self.canary_token)
