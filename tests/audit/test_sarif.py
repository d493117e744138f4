from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from sandbox.audit import RULES, audit_path, to_sarif
from sandbox.backends.templates.hostile import HOSTILE, REFERENCE
from tests.audit.ggufs import write_gguf
from tests.helpers import REPO

SCHEMA = json.loads((REPO / "tests/data/sarif/sarif-schema-2.1.0.json").read_text())


def test_to_sarif_validates_against_the_sarif_2_1_0_schema(tmp_path: Path) -> None:
    audits = [audit_path(write_gguf(tmp_path / f"{n}.gguf", t)) for n, t in HOSTILE.items()]
    audits.append(audit_path(write_gguf(tmp_path / "clean.gguf", REFERENCE)))
    log = to_sarif(audits, "0.1.0")
    jsonschema.validate(log, SCHEMA)
    results = log["runs"][0]["results"]
    assert len(results) == sum(len(a.findings) for a in audits)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} == set(RULES)
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    assert {r["level"] for r in results} >= {"error", "warning"}
