"""What every sandbox offers the rest of the program: the `Isolation` protocol and `none`.

An isolation makes model servers (`make_server`), runs any command as a server would run
(`execute`, for `sandbox exec`) and stamps models with the images they will run in (`stamp`).
`sandbox.isolation.select` holds the registry of isolations and `auto`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from sandbox.backends import ModelServer, PreparedModel, ServerCommand
from sandbox.egress import Capture, EgressEvent
from sandbox.errors import ExecError, SandboxStartError
from sandbox.isolation.names import IsolationName

__all__ = ["ExecResult", "Isolation", "IsolationName", "NoIsolation", "Share", "require_local"]


@dataclass(frozen=True)
class Share:
    """A host path the command sees at the same path, read-only unless `writable`."""

    path: Path
    writable: bool = False

    def resolved(self) -> str:
        """The absolute path; ExecError when it does not exist."""
        if not self.path.exists():
            raise ExecError(f"{self.path} does not exist.", hint="Give an existing path.")
        return str(self.path.resolve())


@dataclass(frozen=True)
class ExecResult:
    """The command's exit status and what the sandbox saw."""

    returncode: int
    events: list[EgressEvent]
    capture: Capture


class Isolation(Protocol):
    """Where model servers run."""

    name: str

    def make_server(
        self, model: PreparedModel, log_dir: Path, label: str, run_id: str
    ) -> ModelServer:
        """A new, not yet started server for `model`, its files named after `label`."""

    def execute(
        self,
        argv: Sequence[str],
        image: str | None = None,
        timeout_s: float | None = None,
        shares: Sequence[Share] = (),
        out: TextIO = sys.stdout,
    ) -> ExecResult:
        """Run `argv` in a fresh sandbox as a model server would run; collect its egress."""

    def stamp(self, models: Sequence[PreparedModel]) -> tuple[list[PreparedModel], dict[str, str]]:
        """The models with the image each will run in, and the sandbox's own image ids."""


class NoIsolation:
    """Servers as the model prepares them: remote endpoints, or plain processes in tests."""

    name = "none"

    def make_server(
        self, model: PreparedModel, log_dir: Path, label: str, run_id: str
    ) -> ModelServer:
        """The model's own server."""
        return model.make_server(log_dir / f"{label}.log")

    def execute(
        self,
        argv: Sequence[str],
        image: str | None = None,
        timeout_s: float | None = None,
        shares: Sequence[Share] = (),
        out: TextIO = sys.stdout,
    ) -> ExecResult:
        """Refused: without a sandbox nothing would be observed."""
        raise SandboxStartError(
            "sandbox exec needs a sandbox: 'none' observes nothing.",
            hint="Use --isolation namespace or docker.",
        )

    def stamp(self, models: Sequence[PreparedModel]) -> tuple[list[PreparedModel], dict[str, str]]:
        """No images: the models as they are."""
        return list(models), {}


def require_local(model: PreparedModel) -> ServerCommand:
    """The model's server command; an endpoint that runs elsewhere cannot be sandboxed."""
    if model.command is None:
        raise SandboxStartError(
            f"{model.provenance.spec} is an endpoint that runs elsewhere; it cannot be put "
            "in a sandbox.",
            hint="Use --isolation none for openai: endpoints.",
        )
    return model.command
