"""`sandbox --help` starts without the heavy parts: each command imports what it uses."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("sqlalchemy", "sqlmodel", "pydicom", "reportlab", "docker", "PIL", "llama_cpp", "httpx")


def _run(code: str) -> tuple[str, set[str]]:
    """What `code` printed, and the top-level modules loaded once it ran."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    *printed, modules = done.stdout.splitlines()
    return "\n".join(printed), {name.split(".")[0] for name in json.loads(modules)}


def _loaded_after(code: str) -> set[str]:
    return _run(code)[1]


def test_importing_the_command_line_loads_no_heavy_library() -> None:
    assert _loaded_after("import sandbox.cli") & set(HEAVY) == set()


def test_the_package_and_its_api_names_load_nothing_until_used() -> None:
    assert _loaded_after("import sandbox") & {*HEAVY, "pydantic", "typer"} == set()


def test_help_lists_every_command_without_the_heavy_libraries() -> None:
    code = (
        "import sys\nfrom unittest import mock\nfrom sandbox.cli import main\n"
        "with mock.patch('sys.argv', ['sandbox', '--help']):\n"
        "    try:\n        main()\n    except SystemExit:\n        pass"
    )
    printed, loaded = _run(code)
    assert loaded & set(HEAVY) == set()
    for command in ("run", "report", "score", "scenarios", "exec", "doctor", "models"):
        assert f" {command} " in printed, printed
