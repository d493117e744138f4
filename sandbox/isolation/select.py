"""Isolation backends behind one interface, and `auto`: the strongest one this host supports.

none        no sandbox; only for openai: endpoints someone else runs (egress not observed)
namespace   network namespace + egress sink + bubblewrap jail, no daemon (root, or rootless)
docker      the production path (comes with the docker backend)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, Protocol

from sandbox.backends import ModelServer, PreparedModel, ServerCommand
from sandbox.backends.prepare import LLAMA_IMAGE_REPO
from sandbox.errors import MissingDependencyError, SandboxStartError
from sandbox.isolation import docker, namespace

IsolationName = Literal["auto", "docker", "namespace", "none"]


class Isolation(Protocol):
    """Where model servers run."""

    name: str

    def make_server(
        self, model: PreparedModel, log_dir: Path, label: str, run_id: str
    ) -> ModelServer:
        """A new, not yet started server for `model`, its files named after `label`."""


class NoIsolation:
    """Servers as the model prepares them: remote endpoints, or plain processes in tests."""

    name = "none"

    def make_server(
        self, model: PreparedModel, log_dir: Path, label: str, run_id: str
    ) -> ModelServer:
        """The model's own server."""
        return model.make_server(log_dir / f"{label}.log")


class NamespaceIsolation:
    """Each server in its own network namespace with an egress sink."""

    name = "namespace"

    def __init__(self, rootless: bool | None = None) -> None:
        self.rootless = rootless  # None: rootless exactly when not root

    def make_server(
        self, model: PreparedModel, log_dir: Path, label: str, run_id: str
    ) -> ModelServer:
        """A server inside a fresh namespace sandbox."""
        command = _require_local(model)
        if command.gpus:
            raise SandboxStartError(
                f"{model.provenance.spec} needs GPUs, which only the docker sandbox provides.",
                hint="Use --isolation docker on a GPU host.",
            )
        sandbox = namespace.NamespaceSandbox(log_dir, label, rootless=self.rootless)
        return namespace.NamespaceServer(command, log_dir / f"{label}.log", sandbox)


class DockerIsolation:
    """Each server in its own container, joined to its own sink container."""

    name = "docker"

    def __init__(self, client: Any, gpus: str = "all") -> None:
        self.client, self.gpus = client, gpus

    def image_id(self, tag: str) -> str:
        """The id of a local image (never pulled); '' when it is missing."""
        import docker as sdk

        try:
            return str(self.client.images.get(tag).id)
        except sdk.errors.ImageNotFound:
            return ""

    def make_server(
        self, model: PreparedModel, log_dir: Path, label: str, run_id: str
    ) -> ModelServer:
        """A server container inside a fresh sink container's namespace."""
        command = _require_local(model)
        sandbox = docker.DockerSandbox(self.client, run_id, log_dir, label)
        log_path = log_dir / f"{label}.log"
        return docker.DockerServer(command, log_path, sandbox, command.image, self.gpus)


def _require_local(model: PreparedModel) -> ServerCommand:
    if model.command is None:
        raise SandboxStartError(
            f"{model.provenance.spec} is an endpoint that runs elsewhere; it cannot be put "
            "in a sandbox.",
            hint="Use --isolation none for openai: endpoints.",
        )
    return model.command


def docker_images_present(client: Any) -> bool:
    """True when the sink and llama images have been built (`make images`)."""
    tags = {tag for image in client.images.list() for tag in image.tags}
    return docker.SINK_IMAGE in tags and any(t.startswith(LLAMA_IMAGE_REPO) for t in tags)


def choose_isolation(name: IsolationName, has_local_models: bool, gpus: str = "all") -> Isolation:
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
        return DockerIsolation(docker.docker_client(), gpus)
    if name == "auto" and not has_local_models:
        return NoIsolation()
    if name == "auto":
        found = usable_docker()
        if found is not None:
            found.gpus = gpus
            return found
    reason = namespace.unavailable_reason()
    if reason:
        raise SandboxStartError(
            f"no sandbox can run local models here: {reason}.",
            hint="Install what is missing, or use an openai: endpoint with --isolation none.",
        )
    return NamespaceIsolation()


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


def with_image_ids(
    isolation: Isolation, models: Sequence[PreparedModel]
) -> tuple[list[PreparedModel], dict[str, str]]:
    """Models with the id of the image each will run in, and the sandbox's own image ids."""
    if not isinstance(isolation, DockerIsolation):
        return list(models), {}
    stamped = [
        replace(
            m,
            provenance=m.provenance.model_copy(
                update={"image_id": isolation.image_id(m.command.image if m.command else "")}
            ),
        )
        for m in models
    ]
    return stamped, {
        "sink_image": docker.SINK_IMAGE,
        "sink_image_id": isolation.image_id(docker.SINK_IMAGE),
    }
