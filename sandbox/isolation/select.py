"""Isolation backends behind one interface, and `auto`: the strongest one this host supports.

none        no sandbox; only for openai: endpoints someone else runs (egress not observed)
namespace   network namespace + egress sink, no daemon (root on Linux)
docker      the production path (comes with the docker backend)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from sandbox.backends import ModelServer, PreparedModel
from sandbox.errors import SandboxStartError
from sandbox.isolation import namespace

IsolationName = Literal["auto", "docker", "namespace", "none"]


class Isolation(Protocol):
    """Where model servers run."""

    name: str

    def make_server(self, model: PreparedModel, log_dir: Path, label: str) -> ModelServer:
        """A new, not yet started server for `model`, its files named after `label`."""


class NoIsolation:
    """Servers as the model prepares them: remote endpoints, or plain processes in tests."""

    name = "none"

    def make_server(self, model: PreparedModel, log_dir: Path, label: str) -> ModelServer:
        """The model's own server."""
        return model.make_server(log_dir / f"{label}.log")


class NamespaceIsolation:
    """Each server in its own network namespace with an egress sink."""

    name = "namespace"

    def make_server(self, model: PreparedModel, log_dir: Path, label: str) -> ModelServer:
        """A server inside a fresh namespace sandbox."""
        if model.command is None:
            raise SandboxStartError(
                f"{model.provenance.spec} is an endpoint that runs elsewhere; it cannot be put "
                "in a sandbox.",
                hint="Use --isolation none for openai: endpoints.",
            )
        sandbox = namespace.NamespaceSandbox(log_dir, label)
        return namespace.NamespaceServer(model.command, log_dir / f"{label}.log", sandbox)


def choose_isolation(name: IsolationName, has_local_models: bool) -> Isolation:
    """The isolation to use; a clear SandboxStartError when it cannot work here."""
    if name == "none":
        if has_local_models:
            raise SandboxStartError(
                "--isolation none is only for openai: endpoints; local models always run in "
                "a sandbox.",
                hint="Use --isolation auto (or namespace, docker).",
            )
        return NoIsolation()
    if name == "docker":
        raise SandboxStartError(
            "the docker sandbox is not available in this version.",
            hint="Use --isolation namespace (root on Linux).",
        )
    if name == "auto" and not has_local_models:
        return NoIsolation()
    reason = namespace.unavailable_reason()
    if reason:
        raise SandboxStartError(
            f"no sandbox can run local models here: {reason}.",
            hint="Run as root on Linux (or use an openai: endpoint with --isolation none).",
        )
    return NamespaceIsolation()
