"""The exception tree drawn in `sandbox/errors.py` is the tree of its classes, and each is used."""

from __future__ import annotations

import inspect
import re

from sandbox import errors
from tests.helpers import REPO


def _drawn() -> dict[str, str]:
    """Each class drawn in the docstring mapped to the class it hangs under."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        found = re.match(r"^\s*([│ ]*)(?:[├└]── )?([A-Z]\w+Error)\s", line)
        if not found:
            continue
        depth = len(found.group(1)) // 4 + (1 if "──" in line else 0)
        stack = [(d, name) for d, name in stack if d < depth]
        parents[found.group(2)] = stack[-1][1] if stack else "Exception"
        stack.append((depth, found.group(2)))
    return parents


def _defined() -> dict[str, str]:
    return {
        name: cls.__bases__[0].__name__
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.SandboxError)
    }


def test_the_drawn_tree_is_the_tree_of_the_classes() -> None:
    assert _drawn() == _defined()


def test_every_error_class_is_raised_and_the_base_never_directly() -> None:
    source = "\n".join(p.read_text() for p in (REPO / "sandbox").rglob("*.py"))
    constructed = set(re.findall(r"(?<!class )\b([A-Z]\w+Error)\(", source))
    assert set(_defined()) - constructed == {"SandboxError"}
    assert "raise SandboxError(" not in source
