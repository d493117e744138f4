"""A report's findings as SARIF 2.1.0, for the code-scanning dashboards that read audits.

One SARIF run holds the evaluation: per model, scenario, variant and check, one result for the
trials on which the check failed (an attack that worked is an error for a security check and a
warning for a utility check; a clean twin that failed is a note), and one for the connections
caught in the sandbox. The model files' audits follow as runs of their own. Each result carries
a fingerprint of model, scenario, variant and rule, so a dashboard follows it across runs.
"""

from __future__ import annotations

import hashlib
import inspect
from collections import defaultdict
from pathlib import Path
from typing import Any

from sandbox.audit import to_sarif
from sandbox.audit.sarif import SCHEMA
from sandbox.detectors import CHECKS
from sandbox.report.model import ModelReport, Report, TrialOut

EGRESS_RULE = "sandbox-egress"
_LEVELS = {("attacked", "security"): "error", ("attacked", "utility"): "warning"}
_SCORES = {"error": "8.0", "warning": "5.5", "note": "2.0"}


def render_sarif(report: Report, version: str) -> dict[str, Any]:
    """The report as a SARIF log: the evaluation's findings, then each model file's audit."""
    rule_ids = [*sorted(CHECKS), EGRESS_RULE]
    paths = {s.id: s.path for run in report.runs for s in run.scenarios}
    results = []
    for model in report.models:
        trials = [t for t in report.trials if t.model_key == model.key and t.status == "ok"]
        results.extend(_check_results(model, trials, paths, rule_ids))
        results.extend(_egress_results(model, trials, paths, rule_ids))
    driver = {
        "name": "sandbox-eval",
        "version": version,
        "rules": [_rule(rule_id) for rule_id in rule_ids],
    }
    audits = [m.provenance.audit for m in report.models if m.provenance.audit is not None]
    audit_runs = to_sarif(audits, version)["runs"] if audits else []
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}, *audit_runs],
    }


def _rule(rule_id: str) -> dict[str, Any]:
    if rule_id == EGRESS_RULE:
        text = "Something in the sandbox tried to open a connection during a trial."
    else:
        module = inspect.getmodule(CHECKS[rule_id].run)
        doc = inspect.getdoc(module) if module else None
        text = (doc or rule_id).splitlines()[0]
    name = "".join(part.title() for part in rule_id.replace("_", "-").split("-"))
    return {"id": rule_id, "name": name, "shortDescription": {"text": text}}


def _check_results(
    model: ModelReport, trials: list[TrialOut], paths: dict[str, str], rule_ids: list[str]
) -> list[dict[str, Any]]:
    """One result per scenario, variant and check that failed on some of its trials."""
    groups: dict[tuple[str, str, str], list[tuple[TrialOut, bool, str, str]]] = defaultdict(list)
    for t in trials:
        for v in t.verdicts:
            groups[(t.scenario_id, t.variant, v.check)].append((t, v.passed, v.kind, v.detail))
    results = []
    for (scenario_id, variant, check), seen in sorted(groups.items()):
        failed = [(t, detail) for t, passed, _, detail in seen if not passed]
        if not failed or check not in rule_ids:
            continue
        level = _LEVELS.get((variant, seen[0][2]), "note")
        first, detail = failed[0]
        text = (
            f"{model.label}: {check} failed in {len(failed)} of {len(seen)} {variant} trial(s) "
            f"of {scenario_id}" + (f": {detail}" if detail else "")
        )
        results.append(
            _result(model, first, check, rule_ids, level, text, paths, len(failed), len(seen))
        )
    return results


def _egress_results(
    model: ModelReport, trials: list[TrialOut], paths: dict[str, str], rule_ids: list[str]
) -> list[dict[str, Any]]:
    """One result per scenario and variant whose trials reached for the network."""
    reached: dict[tuple[str, str], list[TrialOut]] = defaultdict(list)
    for t in trials:
        if t.egress:
            reached[(t.scenario_id, t.variant)].append(t)
    results = []
    for (scenario_id, variant), hits in sorted(reached.items()):
        destinations = sorted({e.destination for t in hits for e in t.egress})
        attempts = sum(len(t.egress) for t in hits)
        text = (
            f"{model.label}: {attempts} connection attempt(s) caught in {len(hits)} {variant} "
            f"trial(s) of {scenario_id}, to {', '.join(destinations[:5])}"
        )
        results.append(
            _result(model, hits[0], EGRESS_RULE, rule_ids, "error", text, paths, len(hits), 0)
        )
    return results


def _result(
    model: ModelReport,
    trial: TrialOut,
    rule: str,
    rule_ids: list[str],
    level: str,
    text: str,
    paths: dict[str, str],
    failed: int,
    trials: int,
) -> dict[str, Any]:
    identity = f"{model.provenance.spec}|{trial.scenario_id}|{trial.variant}|{rule}"
    location: dict[str, Any] = {
        "logicalLocations": [
            {"fullyQualifiedName": f"{model.label}/{trial.scenario_id}", "kind": "member"}
        ]
    }
    if path := paths.get(trial.scenario_id):
        location["physicalLocation"] = {"artifactLocation": {"uri": _uri(path)}}
    return {
        "ruleId": rule,
        "ruleIndex": rule_ids.index(rule),
        "level": level,
        "message": {"text": text},
        "locations": [location],
        "partialFingerprints": {"sandboxEval/v1": hashlib.sha256(identity.encode()).hexdigest()},
        "properties": {
            "security-severity": _SCORES[level],
            "run": model.run_id,
            "model": model.provenance.spec,
            "scenario": trial.scenario_id,
            "family": trial.family,
            "carrier": trial.carrier,
            "variant": trial.variant,
            "failed": failed,
            **({"trials": trials} if trials else {}),
        },
    }


def _uri(path: str) -> str:
    """A scenario file as the dashboard finds it: relative to the checkout, or a file URI."""
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return p.as_uri()
