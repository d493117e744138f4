"""Audits as SARIF 2.1.0, the format code-scanning dashboards read.

One run per call, one result per finding; the rule's severity is also given as GitHub's
`security-severity` score so its dashboard ranks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sandbox.audit.findings import RULES, Audit, Finding, Severity

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {
    Severity.INFO: "note",
    Severity.LOW: "note",
    Severity.MEDIUM: "warning",
    Severity.HIGH: "error",
    Severity.CRITICAL: "error",
}
SCORES = {
    Severity.INFO: "0.0",
    Severity.LOW: "3.0",
    Severity.MEDIUM: "5.5",
    Severity.HIGH: "8.0",
    Severity.CRITICAL: "9.5",
}


def to_sarif(audits: Sequence[Audit], version: str) -> dict[str, Any]:
    """A SARIF log of every finding of every audit."""
    rule_ids = sorted(RULES)
    rules = [
        {
            "id": rule_id,
            "name": "".join(part.title() for part in rule_id.split("-")),
            "shortDescription": {"text": RULES[rule_id].title},
            "help": {"text": RULES[rule_id].help},
        }
        for rule_id in rule_ids
    ]
    results = [
        _result(audit, f, rule_ids.index(f.rule)) for audit in audits for f in audit.findings
    ]
    driver = {"name": "sandbox-eval audit", "version": version, "rules": rules}
    artifacts = [
        {"location": {"uri": _uri(a.target)}, "hashes": {"sha-256": a.sha256}}
        for a in audits
        if a.sha256
    ]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "artifacts": artifacts, "results": results}],
    }


def _result(audit: Audit, finding: Finding, rule_index: int) -> dict[str, Any]:
    logical: dict[str, Any] = {"fullyQualifiedName": finding.location, "kind": "member"}
    return {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": _uri(audit.target)}},
                "logicalLocations": [logical],
            }
        ],
        "properties": {
            "severity": finding.severity.value,
            "security-severity": SCORES[finding.severity],
            "evidence": finding.evidence,
            **({"templateLine": finding.line} if finding.line else {}),
        },
    }


def _uri(target: str) -> str:
    path = Path(target)
    return path.resolve().as_uri() if path.is_absolute() else path.as_posix()
