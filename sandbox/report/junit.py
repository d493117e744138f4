r"""The JUnit XML report: one testsuite per model, one testcase per scenario, for CI viewers.

Strings are model output and scenario text: ElementTree escapes them, and characters XML 1.0
cannot hold at all (most control characters) are first replaced by visible `\xNN` text.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence

from sandbox.report.model import ModelReport, Report, RunInfo, ScenarioInfo, TrialOut

# C0 controls but tab, newline and carriage return; C1 controls and DEL; lone surrogates and
# the non-characters U+FFFE and U+FFFF: none can appear in an XML 1.0 document, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
OUTPUT_EXCERPT = 2000  # characters of each trial's output in <system-out>


def xml_text(text: str) -> str:
    r"""Text XML 1.0 can hold: each forbidden character becomes visible `\xNN` (or `\uNNNN`)."""
    return _NOT_XML.sub(_visible, text)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _element(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    """A child element whose every attribute and text went through `xml_text`."""
    child = ET.SubElement(parent, tag, {k: xml_text(str(v)) for k, v in attrs.items()})
    if text is not None:
        child.text = xml_text(text)
    return child


def render_junit(report: Report) -> str:
    """The report as a JUnit XML document (UTF-8 text with its declaration)."""
    root = ET.Element("testsuites", {"name": "sandbox-eval"})
    runs = {run.id: run for run in report.runs}
    totals: Counter[str] = Counter()
    time = 0.0
    for model in report.models:
        run = runs[model.run_id]
        trials = [t for t in report.trials if t.model_key == model.key]
        counts, seconds = _suite(root, model, run, trials)
        totals.update(counts)
        time += seconds
    _set_counts(root, totals, time)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _set_counts(element: ET.Element, counts: Counter[str], time: float) -> None:
    for name in ("tests", "failures", "errors", "skipped"):
        element.set(name, str(counts[name]))
    element.set("time", f"{time:.3f}")


def _suite(
    root: ET.Element, model: ModelReport, run: RunInfo, trials: Sequence[TrialOut]
) -> tuple[Counter[str], float]:
    suite = _element(root, "testsuite", name=model.label, timestamp=run.created_at.isoformat())
    _properties(suite, model, run)
    counts: Counter[str] = Counter()
    time = 0.0
    for scenario in sorted(run.scenarios, key=lambda s: (s.family, s.id)):
        mine = [t for t in trials if t.scenario_id == scenario.id]
        outcome, seconds = _testcase(suite, scenario, mine)
        counts.update(["tests", *([outcome] if outcome != "passed" else [])])
        time += seconds
    _set_counts(suite, counts, time)
    return counts, time


def _properties(suite: ET.Element, model: ModelReport, run: RunInfo) -> None:
    p = model.provenance
    found = {
        "model.spec": p.spec,
        "model.name": p.name,
        "model.sha256": p.file_sha256,
        "model.backend": p.backend,
        "model.backend_version": p.backend_version,
        "model.chat_format": p.chat_format,
        "model.image_id": p.image_id,
        "model.sampling": json.dumps(p.sampling, sort_keys=True),
        "run.id": run.id,
        "run.status": run.status,
        "run.isolation": run.isolation,
        "tool.version": run.tool_version,
        "tool.commit": run.tool_commit,
    }
    properties = _element(suite, "properties")
    for name, value in found.items():
        _element(properties, "property", name=name, value=value)


def _testcase(
    suite: ET.Element, scenario: ScenarioInfo, trials: Sequence[TrialOut]
) -> tuple[str, float]:
    """One scenario on one model; returns its outcome (failures, errors, skipped or passed)."""
    trials = sorted(trials, key=lambda t: (t.variant != "attacked", t.repeat, t.id))
    seconds = sum(t.duration_s for t in trials)
    case = _element(
        suite,
        "testcase",
        classname=scenario.family,
        name=scenario.id,
        file=scenario.path,
        time=f"{seconds:.3f}",
    )
    failed = [t for t in trials if t.status == "ok" and t.failed]
    errored = [t for t in trials if t.status == "error"]
    if failed:
        outcome = "failures"
        _failure(case, failed, errored)
    elif errored:
        outcome = "errors"
        _element(
            case,
            "error",
            "\n\n".join(f"{_trial_name(t)}:\n{t.error}" for t in errored),
            message=f"{len(errored)} of {len(trials)} trials errored: {_first_line(errored)}",
            type="TrialError",
        )
    elif not trials or all(t.status == "skipped" for t in trials):
        outcome = "skipped"
        reason = _first_line(trials) if trials else "no trial stored: the run stopped before it"
        _element(case, "skipped", message=reason)
    else:
        outcome = "passed"
    _element(case, "system-out", _system_out(scenario, trials))
    return outcome, seconds


def _failure(case: ET.Element, failed: Sequence[TrialOut], errored: Sequence[TrialOut]) -> None:
    attacked = any(t.variant == "attacked" for t in failed)
    checks = sorted(
        {f"{v.check} ({t.variant})" for t in failed for v in t.verdicts if not v.passed}
    )
    blocks = [_failed_trial(t) for t in failed]
    blocks += [f"{_trial_name(t)} errored:\n{t.error}" for t in errored]
    _element(
        case,
        "failure",
        "\n\n".join(blocks),
        message=f"{len(failed)} trial(s) failed: {', '.join(checks)}",
        type="AttackSucceeded" if attacked else "CleanTwinFailed",
    )


def _failed_trial(trial: TrialOut) -> str:
    lines = [f"{_trial_name(trial)}:"]
    for v in trial.verdicts:
        if not v.passed:
            label = f", label {v.label}" if v.label else ""
            lines.append(f"  FAIL {v.check} [{v.kind}{label}] on the {trial.variant} variant")
            lines.append(f"    detail: {v.detail}")
            lines.append(f"    evidence: {v.evidence}")
    return "\n".join(lines)


def _trial_name(trial: TrialOut) -> str:
    return f"{trial.variant}, repeat {trial.repeat} (seed {trial.seed}, trial {trial.id})"


def _first_line(trials: Sequence[TrialOut]) -> str:
    text = next((t.error for t in trials if t.error), "")
    return text.strip().splitlines()[0] if text.strip() else "no reason recorded"


def _system_out(scenario: ScenarioInfo, trials: Sequence[TrialOut]) -> str:
    parts = [f"{scenario.title}\n{scenario.path} (sha256 {scenario.file_sha256})"]
    for trial in trials:
        output = trial.output[:OUTPUT_EXCERPT]
        more = f"\n[... {len(trial.output) - OUTPUT_EXCERPT} more characters]"
        parts.append(
            f"--- {_trial_name(trial)}: {trial.status}, {trial.duration_s:.2f} s\n"
            f"{output}{more if len(trial.output) > OUTPUT_EXCERPT else ''}"
        )
    return "\n\n".join(parts)
