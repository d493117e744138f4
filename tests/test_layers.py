"""The layer rule of docs/ARCHITECTURE.md: a part of `sandbox` imports only parts below it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.helpers import REPO

PACKAGE = REPO / "sandbox"
# Bottom to top; the same order as the table in docs/ARCHITECTURE.md.
LAYERS = [
    {"sandbox", "errors", "status", "registry", "paths", "chat", "egress", "deadline"},
    {"scenarios"},
    {"carriers"},
    {"workflows"},
    {"tools"},
    {"detectors", "backends"},
    {"conversation", "isolation", "scoring", "audit"},
    {"runner"},
    {"store"},
    {"report"},
    {"triggers"},
    {"api"},
    {"cli"},
]
RANK = {part: rank for rank, layer in enumerate(LAYERS) for part in layer}


def _part(path: Path) -> str:
    """`sandbox/cli/run.py` -> 'cli', `sandbox/runner.py` -> 'runner', the package -> 'sandbox'."""
    first = path.relative_to(PACKAGE).parts[0]
    return "sandbox" if first == "__init__.py" else first.removesuffix(".py")


def _imported_parts(tree: ast.Module) -> set[str]:
    """Parts of `sandbox` imported at run time (imports under `if TYPE_CHECKING:` excluded)."""
    typing_only = {
        id(node)
        for guard in ast.walk(tree)
        if isinstance(guard, ast.If) and ast.unparse(guard.test) == "TYPE_CHECKING"
        for node in ast.walk(guard)
    }
    names = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return {"sandbox" if n == "sandbox" else n.split(".")[1] for n in names if _is_ours(n)}


def _is_ours(module: str) -> bool:
    return module == "sandbox" or module.startswith("sandbox.")


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {_part(p) for p in PACKAGE.rglob("*.py")}
    assert parts - RANK.keys() == set(), "add the new part to LAYERS and to the architecture doc"


def test_no_part_imports_a_part_at_or_above_its_own_layer() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = _part(path)
        for imported in _imported_parts(ast.parse(path.read_text())) - {part}:
            if RANK[imported] >= RANK[part]:
                upward.append(f"{path.relative_to(REPO)} imports sandbox.{imported}")
    assert upward == []


def test_the_architecture_doc_draws_the_same_layers() -> None:
    doc = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    rows = re.findall(r"^\| (\d+) \| ([^|]+) \|", doc, flags=re.M)
    drawn = [{name.strip(" `") for name in names.split(",")} for _, names in rows]
    assert drawn == LAYERS
