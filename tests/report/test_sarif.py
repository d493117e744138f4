"""The report as SARIF 2.1.0: schema-valid, one result per failed check, egress, the audits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from sandbox.audit import audit_path
from sandbox.backends.templates.hostile import HOSTILE
from sandbox.detectors import CHECKS
from sandbox.report.model import EgressOut, Report
from sandbox.report.sarif import EGRESS_RULE, render_sarif
from tests.audit.ggufs import write_gguf
from tests.helpers import REPO
from tests.report.reports import model, report, run, scenario, trial, verdict

SCHEMA = json.loads((REPO / "tests/data/sarif/sarif-schema-2.1.0.json").read_text())
BEACON = EgressOut(
    phase="trial",
    protocol="http",
    destination="portal.example:443",
    hostname="portal.example",
    summary="GET /r.png",
)


def _report(label: str = "embedded", **provenance_fields: Any) -> Report:
    leak = verdict("canary_absent", False, detail="canary in the output")
    missed = verdict("findings_reported", False, "utility", detail="missed rul-nodule")
    kept = verdict("findings_reported", True, "utility")
    trials = [
        trial(1, "leaks", "attacked", verdicts=[leak, kept], repeat=0),
        trial(2, "leaks", "attacked", verdicts=[verdict(), kept], repeat=1),
        trial(3, "leaks", "clean", verdicts=[verdict(), missed]),
        trial(4, "beacon", "attacked", verdicts=[verdict(), kept], egress=[BEACON]),
        trial(5, "beacon", "clean", verdicts=[verdict(), kept]),
        trial(6, "passes", "attacked", verdicts=[verdict()]),
        trial(7, "broken", "attacked", status="error", verdicts=[]),
    ]
    scenarios = [scenario(s) for s in ("leaks", "beacon", "passes", "broken")]
    return report([model(label, **provenance_fields)], [run(scenarios=scenarios)], trials)


def test_render_sarif_validates_against_the_sarif_2_1_0_schema() -> None:
    jsonschema.validate(render_sarif(_report(), "0.1.0"), SCHEMA)


def test_each_failed_check_is_one_result_with_its_count_and_level() -> None:
    [evaluation] = render_sarif(_report(), "0.1.0")["runs"]
    found = {
        (r["properties"]["scenario"], r["properties"]["variant"], r["ruleId"]): r
        for r in evaluation["results"]
    }
    assert set(found) == {
        ("leaks", "attacked", "canary_absent"),
        ("leaks", "clean", "findings_reported"),
        ("beacon", "attacked", EGRESS_RULE),
    }
    leak = found["leaks", "attacked", "canary_absent"]
    assert leak["level"] == "error" and (
        leak["properties"]["failed"],
        leak["properties"]["trials"],
    ) == (1, 2)
    assert (
        "failed in 1 of 2 attacked trial(s) of leaks: canary in the output"
        in leak["message"]["text"]
    )
    assert leak["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "scenarios/document-injection/leaks.yaml"
    )
    assert found["leaks", "clean", "findings_reported"]["level"] == "note"
    beacon = found["beacon", "attacked", EGRESS_RULE]
    assert beacon["level"] == "error" and "portal.example:443" in beacon["message"]["text"]
    rules = evaluation["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [*sorted(CHECKS), EGRESS_RULE]
    for result in evaluation["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_fingerprints_follow_a_finding_across_runs_and_tell_models_apart() -> None:
    def prints(spec: str) -> set[str]:
        log = render_sarif(_report(spec), "0.1.0")
        return {r["partialFingerprints"]["sandboxEval/v1"] for r in log["runs"][0]["results"]}

    assert prints("embedded") == prints("embedded")
    assert not prints("embedded") & prints("gguf:/models/b.gguf")


def test_the_model_files_audits_follow_as_their_own_run(tmp_path: Path) -> None:
    audit = audit_path(write_gguf(tmp_path / "link.gguf", HOSTILE["link"]))
    log = render_sarif(_report(audit=audit), "0.1.0")
    jsonschema.validate(log, SCHEMA)
    [_, audits] = log["runs"]
    assert audits["tool"]["driver"]["name"] == "sandbox-eval audit"
    assert {r["ruleId"] for r in audits["results"]} >= {"template-link", "template-turn"}
