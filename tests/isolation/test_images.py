"""The images `make images` builds: present with their recipe labels, and usable the way the
docker sandbox runs them (no network, uid 65534, read-only root).

Skips when no Docker daemon answers or the images are missing; SANDBOX_REQUIRE_DOCKER=1 turns
both into failures.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib

import pytest

from tests.helpers import REPO

# Read at import: the autouse `isolated_env` fixture clears SANDBOX_* before every test.
REQUIRE_DOCKER = os.environ.get("SANDBOX_REQUIRE_DOCKER") == "1"
RECIPE_LABEL = "org.sandbox.recipe"


def _versions() -> tuple[str, str]:
    """The project's version and the pinned llama-cpp-python version (as images/build.sh)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (llama,) = project["optional-dependencies"]["llama"]
    return project["version"], llama.split("==")[1]


PROJECT_VERSION, LLAMA_VERSION = _versions()
BASE = "localhost/sandbox-base:bookworm"
SINK = f"localhost/sandbox-sink:{PROJECT_VERSION}"
LLAMA = f"localhost/sandbox-llama:{LLAMA_VERSION}"

pytestmark = pytest.mark.docker


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def _unavailable(reason: str) -> None:
    if REQUIRE_DOCKER:
        pytest.fail(f"{reason} (SANDBOX_REQUIRE_DOCKER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def labels() -> dict[str, dict[str, str]]:
    """Each image's labels; skips (fails when required) with no daemon or missing images."""
    if shutil.which("docker") is None or _docker("info", timeout=30).returncode != 0:
        _unavailable("no Docker daemon answers (`docker info` failed)")
    found: dict[str, dict[str, str]] = {}
    for image in (BASE, SINK, LLAMA):
        result = _docker("image", "inspect", "-f", "{{json .Config.Labels}}", image)
        if result.returncode == 0:
            found[image] = json.loads(result.stdout) or {}
    missing = sorted({BASE, SINK, LLAMA} - found.keys())
    if missing:
        _unavailable(f"images missing ({', '.join(missing)}): run make images")
    return found


def test_images_carry_their_own_recipe_labels(labels: dict[str, dict[str, str]]) -> None:
    recipes = {image: image_labels.get(RECIPE_LABEL, "") for image, image_labels in labels.items()}
    for image, recipe in recipes.items():
        assert re.fullmatch(r"[0-9a-f]{64}", recipe), f"{image}: {RECIPE_LABEL}={recipe!r}"
    # Each image has its own recipe, so a stale one is rebuilt without touching the others.
    assert len(set(recipes.values())) == 3


def test_llama_image_imports_the_server_offline_as_nobody_with_a_read_only_root(
    labels: dict[str, dict[str, str]],
) -> None:
    code = "import llama_cpp, uvicorn; print(llama_cpp.__version__)"
    isolated = ("--network", "none", "--user", "65534", "--read-only")
    result = _docker("run", "--rm", *isolated, LLAMA, "/opt/venv/bin/python", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == LLAMA_VERSION


def test_base_image_has_the_sink_network_tools(labels: dict[str, dict[str, str]]) -> None:
    tools = ("ip", "iptables-restore", "ip6tables-restore", "python3")
    # One `command -v` per tool: dash's `command -v a b` looks up only the first name.
    script = 'for tool in "$@"; do command -v "$tool" || exit 1; done'
    result = _docker("run", "--rm", "--network", "none", BASE, "sh", "-c", script, "sh", *tools)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.rsplit("/", 1)[-1] for line in result.stdout.split()] == list(tools)


def test_sink_image_runs_the_mounted_package(labels: dict[str, dict[str, str]]) -> None:
    mount = f"{REPO / 'sandbox'}:/opt/sandbox/sandbox:ro"
    result = _docker("run", "--rm", "--network", "none", "--read-only", "-v", mount, SINK, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: python -m sandbox.isolation.sink" in result.stdout
