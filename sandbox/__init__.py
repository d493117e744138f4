"""Sandboxed red-team evaluation of locally hosted LLMs in clinical radiology workflows.

The library is the product; the `sandbox` command is a thin layer over it (see `sandbox.cli`).
Its public API is `evaluate` (the whole of `sandbox run`), the `Evaluation` it returns,
`sweep_triggers` (the whole of `sandbox triggers`) and its `Sweep`, `RunStatus` and `ExitCode`;
they import on first use, so `import sandbox` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "Evaluation",
    "EvaluationObserver",
    "ExitCode",
    "Interrupted",
    "RunStatus",
    "Sweep",
    "evaluate",
    "sweep_triggers",
]

if TYPE_CHECKING:
    from sandbox.api import (
        Evaluation,
        EvaluationObserver,
        Interrupted,
        Sweep,
        evaluate,
        sweep_triggers,
    )
    from sandbox.status import ExitCode, RunStatus

_HOMES = {
    "evaluate": "sandbox.api",
    "Evaluation": "sandbox.api",
    "EvaluationObserver": "sandbox.api",
    "Interrupted": "sandbox.api",
    "Sweep": "sandbox.api",
    "sweep_triggers": "sandbox.api",
    "RunStatus": "sandbox.status",
    "ExitCode": "sandbox.status",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is asked for (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)
