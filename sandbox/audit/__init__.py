"""The model artifact as an attack surface: static audit of GGUF files and model folders.

`audit_model(spec_or_path)` returns an `Audit` of findings with severities; `to_sarif` writes
them as SARIF 2.1.0 for code-scanning dashboards. Results are cached by the file's SHA-256 and
this package's own version, so a run's start-up audit of a large GGUF costs its parse once.
"""

from __future__ import annotations

from sandbox.audit.findings import RULES, Audit, Finding, Severity
from sandbox.audit.run import audit_model, audit_path
from sandbox.audit.sarif import to_sarif

__all__ = ["RULES", "Audit", "Finding", "Severity", "audit_model", "audit_path", "to_sarif"]
