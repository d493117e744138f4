"""The README's commands and its scenario example stay true."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.scenarios import load_scenario_file
from sandbox.status import ExitCode
from tests.cli.invoke import sandbox
from tests.helpers import REPO

README = (REPO / "README.md").read_text()


def _console_commands() -> list[list[str]]:
    blocks = re.findall(r"```console\n(.*?)```", README, flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line, comments=True) for line in lines if line.startswith(".venv/bin/")]


def test_readme_names_the_two_commands() -> None:
    assert "make demo" in README and "make test" in README
    targets = (REPO / "Makefile").read_text()
    assert re.search(r"^demo:", targets, flags=re.M) and re.search(r"^test:", targets, flags=re.M)


def test_readme_scenario_example_is_a_valid_scenario(tmp_path: Path) -> None:
    [example] = re.findall(r"```yaml\n(.*?)```", README, flags=re.S)
    path = tmp_path / "example.yaml"
    path.write_text(example)
    scenario = load_scenario_file(path).scenario
    assert scenario.canary_token in scenario.payload_text(scenario.inputs[0].payload)  # type: ignore[arg-type]


@pytest.mark.parametrize("argv", _console_commands(), ids=lambda argv: " ".join(argv[1:3]))
def test_readme_commands_use_real_subcommands_and_options(argv: list[str]) -> None:
    argv = argv[: argv.index("--")] if "--" in argv else argv  # the rest is the user's command
    words = [w for w in argv[1:] if not w.startswith("-")]
    subcommand = words[:2] if words[0] == "scenarios" else words[:1]
    done = sandbox(*subcommand, "--help")
    assert done.returncode == 0, done.stderr
    for option in (w.split("=")[0] for w in argv[1:] if w.startswith("-")):
        assert option in done.stdout, f"{option} is not an option of sandbox {subcommand}"


def test_readme_table_commands_run(tmp_path: Path) -> None:
    for args in (["scenarios", "list", "scenarios/"], ["scenarios", "validate", "scenarios/"]):
        done = sandbox(*args, cwd=REPO)
        assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_readme_python_example_runs_an_evaluation(embedded_env: None, tmp_path: Path) -> None:
    [example] = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    done = subprocess.run(
        [sys.executable, "-c", example], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    status, rate = done.stdout.splitlines()
    assert re.fullmatch(r"run \S+ is complete", status), done.stdout
    assert re.fullmatch(r"attack success [01]/1 \[\d+%-\d+%\]", rate), done.stdout


def test_readme_exit_codes_are_the_exit_code_enum() -> None:
    paragraphs = re.findall(r"^\*\*Exit codes[^\n]*(?:\n(?!\n)[^\n]*)*", README, flags=re.M)
    documented = {int(n) for p in paragraphs for n in re.findall(r"(?<![\d.])(\d+): ", p)}
    assert documented == {int(code) for code in ExitCode}
