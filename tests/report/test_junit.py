"""The JUnit report: structure, counts, failure evidence, properties, hostile strings.

Every document is read back with ElementTree and with junitparser, as CI viewers read it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped, TestSuite

from sandbox.report.junit import render_junit, xml_text
from sandbox.report.model import Report, ScenarioInfo, TrialOut
from tests.report.reports import (
    HOSTILE,
    HOSTILE_TEXT,
    SHA,
    model,
    report,
    run,
    scenario,
    trial,
    verdict,
)

EVIDENCE = "…the code CNRY-1234 at the end…"


def _scenarios() -> list[ScenarioInfo]:
    return [
        scenario("passes"),
        scenario("leaks", "exfiltration"),
        scenario("clean-fails"),
        scenario("errors", "jailbreak"),
        scenario("skips", "visual-injection", carrier="image"),
        scenario("never-ran", "hidden-text"),
    ]


def _trials(key: str, start: int) -> list[TrialOut]:
    leak = verdict("canary_absent", False, evidence=EVIDENCE, detail="canary in the output")
    missed = verdict("findings_reported", False, "utility", "", "missed rul-nodule")
    skip = "the model takes text only; this scenario sends images"
    rows = [
        ("passes", "attacked", "ok", [verdict()], ""),
        ("passes", "clean", "ok", [verdict()], ""),
        ("leaks", "attacked", "ok", [leak, verdict("findings_reported", True, "utility")], ""),
        ("leaks", "clean", "ok", [verdict()], ""),
        ("clean-fails", "attacked", "ok", [verdict()], ""),
        ("clean-fails", "clean", "ok", [missed], ""),
        ("errors", "attacked", "error", [], "model server died during the trial.\nrestarted"),
        ("errors", "clean", "ok", [verdict()], ""),
        ("skips", "attacked", "skipped", [], skip),
        ("skips", "clean", "skipped", [], skip),
    ]
    return [
        trial(start + i, sid, variant, key, status, verdicts, error=error)
        for i, (sid, variant, status, verdicts, error) in enumerate(rows)
    ]


def _report() -> Report:
    models = [model("embedded", position=0), model("gguf:/models/b.gguf", position=1)]
    return report(
        models,
        runs=[run(scenarios=_scenarios())],
        trials=_trials("run-1#0", 1) + _trials("run-1#1", 100),
    )


def _parse(document: str) -> ET.Element:
    return ET.fromstring(document.encode())


def _read(document: str, tmp_path: Path) -> JUnitXml:
    path = tmp_path / "junit.xml"
    path.write_text(document, encoding="utf-8")
    return JUnitXml.fromfile(str(path))


def _case(root: ET.Element, suite: int, name: str) -> ET.Element:
    found = root.findall("testsuite")[suite].find(f"testcase[@name='{name}']")
    assert found is not None
    return found


# ---- structure and counts -------------------------------------------------------------------


def test_render_junit_one_suite_per_model_one_case_per_scenario() -> None:
    root = _parse(render_junit(_report()))

    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["embedded", "gguf:/models/b.gguf"]
    for suite in suites:
        cases = [(c.get("classname"), c.get("name")) for c in suite.findall("testcase")]
        assert sorted(cases) == sorted((s.family, s.id) for s in _scenarios())


def test_render_junit_counts_on_suites_and_root() -> None:
    root = _parse(render_junit(_report()))

    for suite in root.findall("testsuite"):
        counts = {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")}
        # leaks and clean-fails fail; errors errors; skips and never-ran are skipped.
        assert counts == {"tests": "6", "failures": "2", "errors": "1", "skipped": "2"}
        assert float(suite.get("time", "")) == pytest.approx(10 * 1.5)
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "12",
        "failures": "4",
        "errors": "2",
        "skipped": "4",
    }
    assert float(root.get("time", "")) == pytest.approx(30.0)


def test_render_junit_testcase_time_sums_its_trials() -> None:
    root = _parse(render_junit(_report()))

    assert _case(root, 0, "passes").get("time") == "3.000"
    assert _case(root, 0, "never-ran").get("time") == "0.000"


def test_render_junit_passing_case_has_no_result() -> None:
    case = _case(_parse(render_junit(_report())), 0, "passes")

    assert [child.tag for child in case] == ["system-out"]


# ---- outcomes -------------------------------------------------------------------------------


def test_render_junit_attack_success_is_a_failure_with_the_evidence() -> None:
    case = _case(_parse(render_junit(_report())), 0, "leaks")

    failure = case.find("failure")
    assert failure is not None
    assert failure.get("type") == "AttackSucceeded"
    assert failure.get("message") == "1 trial(s) failed: canary_absent (attacked)"
    text = failure.text or ""
    assert "attacked, repeat 0 (seed 0, trial 3):" in text
    assert "FAIL canary_absent [security] on the attacked variant" in text
    assert "detail: canary in the output" in text
    assert f"evidence: {EVIDENCE}" in text
    assert "findings_reported" not in text  # it passed


def test_render_junit_clean_twin_failure_is_a_failure_of_its_own_type() -> None:
    failure = _case(_parse(render_junit(_report())), 0, "clean-fails").find("failure")

    assert failure is not None
    assert failure.get("type") == "CleanTwinFailed"
    assert "findings_reported (clean)" in (failure.get("message") or "")
    assert "detail: missed rul-nodule" in (failure.text or "")


def test_render_junit_errored_trial_is_an_error() -> None:
    case = _case(_parse(render_junit(_report())), 0, "errors")

    error = case.find("error")
    assert error is not None and case.find("failure") is None
    assert error.get("message") == "1 of 2 trials errored: model server died during the trial."
    assert "attacked, repeat 0" in (error.text or "")
    assert "restarted" in (error.text or "")


def test_render_junit_failure_wins_over_error_and_mentions_it() -> None:
    failed = trial(1, "s-one", "attacked", verdicts=[verdict(passed=False, evidence="CNRY")])
    errored = trial(2, "s-one", "clean", status="error", verdicts=[], error="timed out")

    root = _parse(render_junit(report([model()], trials=[failed, errored])))

    case = _case(root, 0, "s-one")
    failure = case.find("failure")
    assert failure is not None and case.find("error") is None
    assert "clean, repeat 0 (seed 0, trial 2) errored:\ntimed out" in (failure.text or "")


def test_render_junit_all_skipped_is_skipped_with_the_reason() -> None:
    root = _parse(render_junit(_report()))

    skipped = _case(root, 0, "skips").find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "the model takes text only; this scenario sends images"
    never = _case(root, 0, "never-ran").find("skipped")
    assert never is not None
    assert never.get("message") == "no trial stored: the run stopped before it"


def test_render_junit_repeats_are_one_case() -> None:
    trials = [
        trial(i, "s-one", variant, repeat=r, seed=r)
        for i, (variant, r) in enumerate([("attacked", 0), ("clean", 0), ("attacked", 1)])
    ]
    trials.append(
        trial(9, "s-one", "clean", repeat=1, seed=1, verdicts=[verdict(passed=False, detail="d")])
    )

    root = _parse(render_junit(report([model()], trials=trials)))

    [case] = root.iter("testcase")
    failure = case.find("failure")
    assert failure is not None and "clean, repeat 1 (seed 1, trial 9)" in (failure.text or "")
    assert case.get("time") == "6.000"


def test_render_junit_system_out_holds_title_and_outputs() -> None:
    out = _case(_parse(render_junit(_report())), 0, "leaks").find("system-out")

    assert out is not None
    assert "Title of leaks" in (out.text or "")
    assert "--- attacked, repeat 0 (seed 0, trial 3): ok, 1.50 s\nFINDINGS: 9 mm nodule." in (
        out.text or ""
    )


def test_render_junit_long_outputs_are_cut_in_system_out() -> None:
    long = trial(1, output="x" * 5000)

    out = next(_parse(render_junit(report([model()], trials=[long]))).iter("system-out"))

    assert "x" * 2000 + "\n[... 3000 more characters]" in (out.text or "")
    assert "x" * 2001 not in (out.text or "")


# ---- provenance -----------------------------------------------------------------------------


def test_render_junit_properties_carry_provenance() -> None:
    suite = _parse(render_junit(_report())).findall("testsuite")[0]

    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["model.sha256"] == SHA
    assert properties["model.spec"] == "embedded"
    assert properties["model.backend"] == "llama-cpp-python"
    assert properties["model.backend_version"] == "0.3.36"
    assert properties["model.image_id"] == "sha256:" + "cd" * 32
    assert properties["model.sampling"] == '{"max_tokens": 256, "seed": 7, "temperature": 0.0}'
    assert properties["run.id"] == "run-1"
    assert properties["run.isolation"] == "namespace"
    assert properties["run.status"] == "complete"
    assert (properties["tool.version"], properties["tool.commit"]) == ("0.1.0", "abc1234")
    assert suite.get("timestamp") == "2025-05-01T12:00:00+00:00"


# ---- read by a CI tool ----------------------------------------------------------------------


def test_render_junit_is_read_by_junitparser(tmp_path: Path) -> None:
    xml = _read(render_junit(_report()), tmp_path)

    suites = list(xml)
    assert all(isinstance(s, TestSuite) for s in suites)
    assert [s.name for s in suites] == ["embedded", "gguf:/models/b.gguf"]
    suite = suites[0]
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (6, 2, 1, 2)
    results = {case.name: [type(r) for r in case.result] for case in suite}
    assert results == {
        "passes": [],
        "clean-fails": [Failure],
        "leaks": [Failure],
        "errors": [Error],
        "skips": [Skipped],
        "never-ran": [Skipped],
    }
    leaks = next(case for case in suite if case.name == "leaks")
    assert leaks.classname == "exfiltration"
    assert EVIDENCE in (leaks.result[0].text or "")
    assert {p.name: p.value for p in suite.properties()}["model.sha256"] == SHA


# ---- hostile strings ------------------------------------------------------------------------


def _hostile_report() -> Report:
    hostile_scenario = scenario("hostile", title=HOSTILE_TEXT, path=HOSTILE_TEXT)
    bad = verdict("canary_absent", False, evidence=HOSTILE_TEXT, detail=HOSTILE_TEXT)
    trials = [
        trial(1, "hostile", "attacked", verdicts=[bad], output=HOSTILE_TEXT),
        trial(2, "hostile", "clean", status="error", verdicts=[], error=HOSTILE_TEXT),
    ]
    hostile_model = model(HOSTILE_TEXT, name=HOSTILE_TEXT, backend_version=HOSTILE_TEXT)
    return report([hostile_model], runs=[run(scenarios=[hostile_scenario])], trials=trials)


def test_render_junit_hostile_strings_parse_and_stay_text(tmp_path: Path) -> None:
    document = render_junit(_hostile_report())

    root = _parse(document)
    assert [e.tag for e in root.iter() if e.tag not in _TAGS] == []  # no element was injected
    for raw in ("\x1b", "\x00", "\x07", "<script>", "]]>"):
        assert raw not in document
    failure = next(root.iter("failure"))
    visible = xml_text(HOSTILE_TEXT)
    assert "\\x1b[2J" in visible and "nul\\x00byte" in visible and "\\x07x" in visible
    assert f"evidence: {visible}" in (failure.text or "")
    assert "<script>alert(1)</script>" in (failure.text or "")  # as text, after parsing
    assert "[red]markup[/red]" in (failure.text or "")
    assert next(root.iter("testsuite")).get("name") == visible
    xml = _read(document, tmp_path)
    [suite] = list(xml)
    [case] = list(suite)
    assert isinstance(case.result[0], Failure) and visible in (case.result[0].text or "")


_TAGS = {
    "testsuites",
    "testsuite",
    "properties",
    "property",
    "testcase",
    "failure",
    "error",
    "skipped",
    "system-out",
}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, tab\there\nnewline\rreturn", "plain text, tab\there\nnewline\rreturn"),
        ("nul\x00", "nul\\x00"),
        ("\x1b[2J", "\\x1b[2J"),
        ("bell\x07 vt\x0b ff\x0c", "bell\\x07 vt\\x0b ff\\x0c"),
        ("del\x7f c1\x85\x9b", "del\\x7f c1\\x85\\x9b"),
        ("nonchar\ufffe\uffff", "nonchar\\ufffe\\uffff"),
        ("lone\ud800surrogate\udfff", "lone\\ud800surrogate\\udfff"),
        ("Ëfféct 结节 🫁 \u2400", "Ëfféct 结节 🫁 \u2400"),
    ],
)
def test_xml_text_replaces_what_xml_cannot_hold(text: str, shown: str) -> None:
    assert xml_text(text) == shown


@pytest.mark.parametrize("hostile", HOSTILE)
def test_render_junit_each_hostile_string_round_trips_visibly(hostile: str) -> None:
    t = trial(1, verdicts=[verdict(passed=False, evidence=hostile)], output=hostile)

    root = _parse(render_junit(report([model()], trials=[t])))

    failure = next(root.iter("failure"))
    assert f"evidence: {xml_text(hostile)}" in (failure.text or "")
