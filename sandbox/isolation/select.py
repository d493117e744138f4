"""The isolations by name, and `auto`: the strongest one this host supports.

none        no sandbox; only for openai: endpoints someone else runs (egress not observed)
namespace   network namespace + egress sink + bubblewrap jail, no daemon (root, or rootless)
docker      the production path (comes with the docker backend)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from sandbox.backends import ModelServer, PreparedModel
from sandbox.backends.prepare import LLAMA_IMAGE_REPO
from sandbox.errors import MissingDependencyError, SandboxStartError
from sandbox.isolation import docker, namespace
from sandbox.isolation.base import (
    ExecResult,
    Isolation,
    IsolationName,
    NoIsolation,
    Share,
    require_local,
)
from sandbox.isolation.execute import execute_in_docker, execute_in_namespace
from sandbox.registry import Registry


class NamespaceIsolation:
    """Each server in its own network namespace with an egress sink."""

    name = "namespace"

    def __init__(self, rootless: bool | None = None) -> None:
        self.rootless = rootless  # None: rootless exactly when not root

    def make_server(
        self, model: PreparedModel, log_dir: Path, label: str, run_id: str
    ) -> ModelServer:
        """A server inside a fresh namespace sandbox."""
        command = require_local(model)
        if command.gpus:
            raise SandboxStartError(
                f"{model.provenance.spec} needs GPUs, which only the docker sandbox provides.",
                hint="Use --isolation docker on a GPU host.",
            )
        sandbox = namespace.NamespaceSandbox(log_dir, label, rootless=self.rootless)
        return namespace.NamespaceServer(command, log_dir / f"{label}.log", sandbox)

    def execute(
        self,
        argv: Sequence[str],
        image: str | None = None,
        timeout_s: float | None = None,
        shares: Sequence[Share] = (),
        out: TextIO = sys.stdout,
    ) -> ExecResult:
        """In the jail of a fresh namespace sandbox; the host's system, no image.

        The command inherits this process's standard output, so `out` is not used.
        """
        if image:
            raise SandboxStartError(
                "--image needs the docker sandbox; the namespace one runs the host's system.",
                hint="Use --isolation docker --image IMAGE, or drop --image.",
            )
        return execute_in_namespace(argv, timeout_s=timeout_s, shares=shares)

    def stamp(self, models: Sequence[PreparedModel]) -> tuple[list[PreparedModel], dict[str, str]]:
        """No images: the models as they are."""
        return list(models), {}


class DockerIsolation:
    """Each server in its own container, joined to its own sink container."""

    name = "docker"

    def __init__(self, client: Any, gpus: str = "all") -> None:
        self.client, self.gpus = client, gpus

    def image_id(self, tag: str) -> str:
        """The id of a local image (never pulled); '' when it is missing."""
        return docker.image_id(self.client, tag)

    def make_server(
        self, model: PreparedModel, log_dir: Path, label: str, run_id: str
    ) -> ModelServer:
        """A server container inside a fresh sink container's namespace."""
        command = require_local(model)
        sandbox = docker.DockerSandbox(self.client, run_id, log_dir, label)
        log_path = log_dir / f"{label}.log"
        return docker.DockerServer(command, log_path, sandbox, command.image, self.gpus)

    def execute(
        self,
        argv: Sequence[str],
        image: str | None = None,
        timeout_s: float | None = None,
        shares: Sequence[Share] = (),
        out: TextIO = sys.stdout,
    ) -> ExecResult:
        """In a hardened container of `image` (default: the llama image) in a fresh sink."""
        chosen = image or docker.default_llama_image()
        return execute_in_docker(argv, chosen, timeout_s=timeout_s, shares=shares, out=out)

    def stamp(self, models: Sequence[PreparedModel]) -> tuple[list[PreparedModel], dict[str, str]]:
        """Each model with the id of the image its server runs in; the sink image's id."""
        stamped = [
            replace(
                m,
                provenance=m.provenance.model_copy(
                    update={"image_id": self.image_id(m.command.image if m.command else "")}
                ),
            )
            for m in models
        ]
        return stamped, {
            "sink_image": docker.SINK_IMAGE,
            "sink_image_id": self.image_id(docker.SINK_IMAGE),
        }


@dataclass(frozen=True)
class IsolationKind:
    """A registered isolation: what it is, and how to make it on this host (with `--gpus`)."""

    name: str
    summary: str
    create: Callable[[str], Isolation]


ISOLATIONS: Registry[IsolationKind] = Registry("isolation")
ISOLATIONS.add(
    IsolationKind("none", "no sandbox, for openai: endpoints only", lambda gpus: NoIsolation())
)
ISOLATIONS.add(
    IsolationKind(
        "namespace",
        "a network namespace, an egress sink and a bubblewrap jail; no daemon",
        lambda gpus: _namespace_here(),
    )
)
ISOLATIONS.add(
    IsolationKind(
        "docker",
        "a sink container and a hardened model container; GPUs",
        lambda gpus: DockerIsolation(docker.docker_client(), gpus),
    )
)


def _namespace_here() -> NamespaceIsolation:
    reason = namespace.unavailable_reason()
    if reason:
        raise SandboxStartError(
            f"no sandbox can run local models here: {reason}.",
            hint="Install what is missing, or use an openai: endpoint with --isolation none.",
        )
    return NamespaceIsolation()


def docker_images_present(client: Any) -> bool:
    """True when the sink and llama images have been built (`make images`)."""
    tags = {tag for image in client.images.list() for tag in image.tags}
    return docker.SINK_IMAGE in tags and any(t.startswith(LLAMA_IMAGE_REPO) for t in tags)


def choose_isolation(name: IsolationName, has_local_models: bool, gpus: str = "all") -> Isolation:
    """The isolation to use; a clear SandboxStartError when it cannot work here."""
    if name == "none" and has_local_models:
        raise SandboxStartError(
            "--isolation none is only for openai: endpoints; local models always run in a sandbox.",
            hint="Use --isolation auto (or namespace, docker).",
        )
    if name != "auto":
        return ISOLATIONS[name].create(gpus)
    if not has_local_models:
        return NoIsolation()
    found = usable_docker()
    if found is not None:
        found.gpus = gpus
        return found
    return _namespace_here()


def usable_docker() -> DockerIsolation | None:
    """Docker when a daemon answers and the images are built; else None (auto falls back)."""
    try:
        client = docker.docker_client()
    except (SandboxStartError, MissingDependencyError):
        return None
    if docker_images_present(client):
        return DockerIsolation(client)
    client.close()
    return None
