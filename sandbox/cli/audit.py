"""`sandbox audit`: print an audit's findings, write them as JSON and SARIF, gate on severity."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sandbox.audit import Audit, Severity, to_sarif
from sandbox.cli.render import safe_text
from sandbox.errors import ReportFileError

STYLES = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def print_audits(console: Console, audits: Sequence[Audit]) -> None:
    """Per artifact: what it is, then its findings worst first."""
    for audit in audits:
        facts = ", ".join(f"{k} {v}" for k, v in audit.facts.items())
        console.print(safe_text(f"{audit.target} ({audit.kind}{': ' + facts if facts else ''})"))
        if not audit.findings:
            console.print("  no findings")
            continue
        table = Table(show_edge=False, pad_edge=False)
        for column in ("severity", "rule", "where", "finding", "evidence"):
            table.add_column(column, overflow="fold")
        for f in sorted(audit.findings, key=lambda f: -f.severity.rank):
            where = f.location + (f" line {f.line}" if f.line else "")
            table.add_row(
                safe_text(f.severity.value, STYLES[f.severity]),
                f.rule,
                safe_text(where),
                safe_text(f.message),
                safe_text(f.evidence),
            )
        console.print(table)


def write_outputs(audits: Sequence[Audit], json_path: Path | None, sarif: Path | None) -> None:
    """The JSON document and the SARIF log, where asked for."""
    if json_path is not None:
        _write(json_path, {"audits": [a.model_dump(mode="json") for a in audits]})
    if sarif is not None:
        _write(sarif, to_sarif(audits, version("sandbox-eval")))


def _write(path: Path, document: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(document, indent=1) + "\n")
    except OSError as exc:
        raise ReportFileError(
            f"cannot write {path}: {exc.strerror or exc}.",
            hint="Choose a folder you can write to.",
        ) from None


def crossed(audits: Sequence[Audit], fail_on: Severity) -> int:
    """How many findings are at or above `fail_on`."""
    return sum(len(a.at_least(fail_on)) for a in audits)
