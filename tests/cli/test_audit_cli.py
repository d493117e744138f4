from __future__ import annotations

import json
from pathlib import Path

from sandbox.backends.templates.hostile import HOSTILE, REFERENCE
from tests.audit.ggufs import write_gguf
from tests.cli.invoke import sandbox


def test_audit_exits_0_on_a_clean_file_and_4_on_a_hostile_one(tmp_path: Path) -> None:
    clean = write_gguf(tmp_path / "clean.gguf", REFERENCE)
    hostile = write_gguf(tmp_path / "escape.gguf", HOSTILE["escape"])
    ok = sandbox("audit", f"gguf:{clean}")
    assert (ok.returncode, "no findings" in ok.stdout) == (0, True)
    bad = sandbox("audit", str(hostile), "--json", str(tmp_path / "a.json"))
    assert bad.returncode == 4
    assert "template-escape" in bad.stdout and "at or above high" in bad.stderr
    [audit] = json.loads((tmp_path / "a.json").read_text())["audits"]
    assert audit["target"] == str(hostile)


def test_audit_fail_on_sets_the_gate(tmp_path: Path) -> None:
    link = write_gguf(tmp_path / "link.gguf", HOSTILE["link"])
    assert sandbox("audit", str(link), "--fail-on", "critical").returncode == 0
    assert sandbox("audit", str(link), "--fail-on", "medium").returncode == 4
    wrong = sandbox("audit", str(link), "--fail-on", "severe")
    assert wrong.returncode == 2 and "not a severity" in wrong.stderr


def test_audit_of_a_missing_file_or_an_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    missing = sandbox("audit", str(tmp_path / "nope.gguf"))
    endpoint = sandbox("audit", "openai:http://127.0.0.1:9/v1#m")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert endpoint.returncode == 1 and "is an endpoint" in endpoint.stderr
    assert "Traceback" not in missing.stderr + endpoint.stderr
