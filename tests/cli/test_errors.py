"""User errors: one clear message with what to do, the right exit code, never a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.cli.invoke import sandbox
from tests.helpers import SCENARIOS

_sandbox = sandbox


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (
            ["run", str(SCENARIOS), "--db", "nosuch://x"],
            "cannot open the results database",
            "Check the --db URL",
        ),
        (["run", str(SCENARIOS), "--model", "gguf:/absent.gguf"], "no such file", "Check the path"),
        (
            ["run", str(SCENARIOS), "--model", "llama3"],
            "is not a model spec",
            "embedded:NAME, gguf:PATH, vllm:PATH, openai:URL#MODEL",
        ),
        (["run", "/absent/scenarios"], "no such file or folder", "Check the path"),
        (
            [
                "run",
                str(SCENARIOS),
                "--model",
                "openai:http://127.0.0.1:9/v1#m",
                "--template",
                "reference",
            ],
            "only GGUF models take another chat template",
            "Templates go with embedded: and gguf: models",
        ),
        (
            ["run", str(SCENARIOS), "--template", "/absent/template.jinja"],
            "template '/absent/template.jinja': no such file",
            "Pass `reference` or the path of a chat template file",
        ),
    ],
)
def test_cli_user_errors_print_message_and_hint(args: list[str], message: str, hint: str) -> None:
    done = _sandbox(*args)
    assert done.returncode == 1
    assert message in done.stderr and hint in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_cli_run_refuses_invalid_scenarios_and_lists_them(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("id: x\ntitel: typo\n")
    (tmp_path / "b.yaml").write_text("just: [unclosed\n")
    done = _sandbox("run", str(tmp_path), "--db", f"sqlite:///{tmp_path / 'r.db'}")
    assert done.returncode == 1
    assert "2 scenario file(s) are invalid" in done.stderr
    assert f"{tmp_path / 'a.yaml'}:2: titel: unknown field 'titel'. Did you mean 'title'?" in (
        done.stderr
    )
    assert str(tmp_path / "b.yaml") in done.stderr
    assert not (tmp_path / "r.db").exists()


@pytest.mark.parametrize("args", [["run", str(SCENARIOS), "--repeat", "0"], ["run"], ["nope"]])
def test_cli_usage_errors_exit_2_without_traceback(args: list[str]) -> None:
    done = _sandbox(*args)
    assert done.returncode == 2
    assert "Error:" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_models_lists_both_embedded_models_and_spec_forms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:  # short: the table folds long paths
        monkeypatch.setenv("SANDBOX_MODELS_DIR", folder)
        (Path(folder) / "candidate.gguf").write_bytes(b"GGUF" + b"\0" * 1024)
        done = _sandbox("models")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[1]: line for line in done.stdout.splitlines() if "embedded:" in line}
    assert "Gemma 3 270M, base" in rows["embedded:gemma3-270m"]
    assert "253 MB" in rows["embedded:gemma3-270m"]
    assert "Apache-2.0" in rows["embedded:smollm2-135m"] and "98 MB" in done.stdout
    assert "SmolLM2-135M-Instruct" in rows["embedded:smollm2-135m"]
    assert "candidate.gguf" in done.stdout
    assert "gguf:PATH" in done.stdout and "openai:URL#MODEL" in done.stdout
