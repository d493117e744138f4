"""Audit of a GGUF file: metadata read with gguf-py, its chat templates and its vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.audit.findings import Audit, Finding, Severity
from sandbox.audit.template import scan_template
from sandbox.audit.tokens import token_findings
from sandbox.backends.templates import reference_for

TEMPLATE_KEY = "tokenizer.chat_template"
SPECIAL_KEYS = ("bos", "eos", "unknown", "padding", "eot", "eom", "sep", "mask")
FACT_KEYS = ("general.architecture", "general.name", "general.basename", "general.size_label")
# What a parser may raise on a hostile or truncated file: numpy's memmap and struct reads fail
# with these, and no other exception is a statement about the file.
PARSE_ERRORS = (ValueError, IndexError, KeyError, OverflowError, UnicodeDecodeError, OSError)


def audit_gguf(path: Path, sha256: str = "") -> Audit:
    """Findings for one GGUF file."""
    try:
        fields = read_fields(path)
    except PARSE_ERRORS as exc:
        unreadable = Finding(
            rule="file-unreadable",
            severity=Severity.HIGH,
            message=f"gguf-py cannot read the file: {exc}",
            location=path.name,
        )
        return Audit(target=str(path), kind="gguf", sha256=sha256, findings=(unreadable,))
    facts = {key.removeprefix("general."): str(fields[key]) for key in FACT_KEYS if key in fields}
    findings = template_findings(fields, facts)
    tokens, types = fields.get("tokenizer.ggml.tokens"), fields.get("tokenizer.ggml.token_type")
    if isinstance(tokens, list) and isinstance(types, list) and len(tokens) == len(types):
        specials = {
            role: int(fields[f"tokenizer.ggml.{role}_token_id"])
            for role in SPECIAL_KEYS
            if f"tokenizer.ggml.{role}_token_id" in fields
        }
        findings += token_findings(tokens, types, specials, "tokenizer.ggml.tokens")
    return Audit(
        target=str(path), kind="gguf", sha256=sha256, facts=facts, findings=tuple(findings)
    )


def read_fields(path: Path) -> dict[str, Any]:
    """Every metadata key of the file with its value (arrays as lists)."""
    from gguf import GGUFReader  # here, not at import: numpy is slow to load

    reader = GGUFReader(path)
    return {key: field.contents() for key, field in reader.fields.items()}


def template_findings(fields: dict[str, Any], facts: dict[str, str]) -> list[Finding]:
    """Every template in the file scanned, the default one compared with its reference."""
    templates = {
        k: v for k, v in fields.items() if k.startswith(TEMPLATE_KEY) and isinstance(v, str)
    }
    if TEMPLATE_KEY not in templates:
        return [
            Finding(
                rule="template-missing",
                severity=Severity.INFO,
                message="no chat template; the server needs a named chat format",
                location=TEMPLATE_KEY,
            )
        ]
    findings = [f for key, text in templates.items() for f in scan_template(text, key)]
    return findings + compare_with_reference(
        templates[TEMPLATE_KEY], facts.get("architecture", ""), facts.get("basename", ""), facts
    )


def compare_with_reference(
    template: str, architecture: str, basename: str, facts: dict[str, str]
) -> list[Finding]:
    """A finding when the template is not its family's reference (or none is known)."""
    reference = reference_for(architecture, basename)
    if reference is None:
        return [
            Finding(
                rule="template-unknown",
                severity=Severity.INFO,
                message=f"no reference template for {architecture}/{basename or '?'}",
                location=TEMPLATE_KEY,
            )
        ]
    facts["reference"] = reference.name
    if template == reference.text:
        facts["template"] = f"the reference of {reference.name}"
        return []
    line, ours, theirs = first_difference(template, reference.text)
    return [
        Finding(
            rule="template-differs",
            severity=Severity.MEDIUM,
            message=f"differs from the template of {reference.name} from line {line}",
            location=TEMPLATE_KEY,
            line=line,
            evidence=f"file: {ours!r}; reference: {theirs!r}",
        )
    ]


def first_difference(ours: str, theirs: str) -> tuple[int, str, str]:
    """The line (1-based) of the first character where two texts differ, and both from there."""
    at = next((i for i, (x, y) in enumerate(zip(ours, theirs, strict=False)) if x != y), None)
    if at is None:
        at = min(len(ours), len(theirs))
    start = max(0, at - 20)
    return ours.count("\n", 0, at) + 1, ours[start : at + 60], theirs[start : at + 60]
