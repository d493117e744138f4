"""From a model spec to a prepared model: its provenance and how to start servers for it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from sandbox.backends.client import ChatClient
from sandbox.backends.embedded import embedded_model
from sandbox.backends.files import sha256_file
from sandbox.backends.server import NOT_FETCHED, ModelServer, ProcessServer, ServerCommand
from sandbox.backends.specs import EmbeddedSpec, GgufSpec, OpenAISpec, VllmSpec
from sandbox.backends.templates.repackage import templated
from sandbox.backends.vllm import (
    VLLM_VERSION,
    folder_manifest_sha256,
    model_inputs,
    vllm_command,
)
from sandbox.chat import Sampling
from sandbox.egress import Capture, EgressEvent
from sandbox.errors import MissingDependencyError, ModelChangedError, ServerStartError

LLAMA_DIST = "llama-cpp-python"
LLAMA_IMAGE_REPO = "localhost/sandbox-llama"
CONTEXT_TOKENS = 4096
GGUF_TOOLS = "gguf-tools"  # llama_serve.py's chat format: the GGUF's own template, with tools


class ModelProvenance(BaseModel):
    """What exactly was evaluated: recorded with every run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spec: str
    backend: str
    backend_version: str
    name: str
    file_path: str = ""
    file_sha256: str = ""
    chat_format: str = ""
    image_id: str = ""  # the container image the server ran in (docker sandbox)
    inputs: tuple[str, ...] = ("text",)  # what the model takes; vision models add "image"
    sampling: Sampling
    audit_json: str = ""  # `sandbox audit` of the file, as JSON ('' for endpoints)


@dataclass(frozen=True)
class PreparedModel:
    """A model ready to serve: `replicas` servers run side by side for concurrency."""

    provenance: ModelProvenance
    command: ServerCommand | None
    endpoint: OpenAISpec | None = None

    @property
    def is_local(self) -> bool:
        """True when the harness starts the server itself."""
        return self.command is not None

    def make_server(self, log_path: Path) -> ModelServer:
        """A new, not yet started server for this model."""
        if self.command is not None:
            return ProcessServer(self.command, log_path)
        assert self.endpoint is not None
        return RemoteServer(self.endpoint)


def prepare_vllm(spec: VllmSpec, sampling: Sampling, threads: int, egress: bool) -> PreparedModel:
    """A vLLM folder: its manifest hash, its inputs (vision or not) and the server command."""
    provenance = ModelProvenance(
        spec=spec.label(),
        backend="vllm",
        backend_version=VLLM_VERSION,
        name=spec.path.name,
        file_path=str(spec.path),
        file_sha256=folder_manifest_sha256(spec.path),
        inputs=model_inputs(spec.path),
        sampling=sampling,
    )
    return PreparedModel(provenance, vllm_command(spec.path, sampling.seed, egress))


def prepare_openai(
    spec: OpenAISpec, sampling: Sampling, threads: int, egress: bool
) -> PreparedModel:
    """A running endpoint: nothing to start and no file to hash."""
    provenance = ModelProvenance(
        spec=spec.label(), backend="openai", backend_version="", name=spec.model, sampling=sampling
    )
    return PreparedModel(provenance=provenance, command=None, endpoint=spec)


def prepare_llama(
    spec: EmbeddedSpec | GgufSpec, sampling: Sampling, threads: int, egress: bool
) -> PreparedModel:
    """A GGUF file (an embedded one assembled first), served by llama-cpp-python."""
    if isinstance(spec, EmbeddedSpec):
        embedded = embedded_model(spec.name)
        path, chat_format = embedded.ensure(), embedded.chat_format
    else:
        path, chat_format = spec.path, ""
    name = path.name
    if spec.template:  # the same weights with another template, which a named format would skip
        path, chat_format = templated(path, spec.template), chat_format and GGUF_TOOLS
        name = f"{name} with template {Path(spec.template).name}"
    provenance = ModelProvenance(
        spec=spec.label(),
        backend=LLAMA_DIST,
        backend_version=llama_version(),
        name=name,
        file_path=str(path),
        file_sha256=sha256_file(path),
        chat_format=chat_format,
        sampling=sampling,
    )
    image = f"{LLAMA_IMAGE_REPO}:{provenance.backend_version}"
    return PreparedModel(
        provenance, llama_command(path, chat_format, threads, sampling.seed, image)
    )


def verify_unchanged(provenance: ModelProvenance) -> None:
    """Hash the model again after a run; ModelChangedError when it is not what was evaluated."""
    if not provenance.file_sha256 or not provenance.file_path:
        return
    path = Path(provenance.file_path)
    try:
        now = folder_manifest_sha256(path) if path.is_dir() else sha256_file(path, fresh=True)
    except OSError as exc:
        now = f"unreadable ({exc.strerror})"
    if now != provenance.file_sha256:
        raise ModelChangedError(
            f"the model {path} changed during the run: SHA-256 {provenance.file_sha256} "
            f"before, {now} after. This run's results describe neither file.",
            hint="Find out what wrote to it; then run again on a read-only copy.",
        )


def llama_version() -> str:
    """The installed llama-cpp-python version; MissingDependencyError when absent."""
    try:
        return metadata.version(LLAMA_DIST)
    except metadata.PackageNotFoundError as exc:
        raise MissingDependencyError("llama_cpp", "llama") from exc


def llama_command(
    model: Path, chat_format: str, threads: int, seed: int, image: str = ""
) -> ServerCommand:
    """llama-cpp-python's server on a Unix socket, configured by a JSON file.

    It runs through `llama_serve.py`, shipped into the sandbox, which adds the `gguf-tools`
    chat format (the GGUF's template, with tool calls). No `chat_format` means the GGUF's own
    template as llama-cpp-python applies it; the embedded Gemma GGUF has none, hence `gemma`.
    The server computes logits for every prompt token by default (`logits_all`), which costs a
    vocabulary-sized row per token (262k for Gemma 3) that chat completions never use: off.
    """
    settings = {
        "model": "@model@",
        "model_alias": "model",
        "n_ctx": CONTEXT_TOKENS,
        "n_threads": threads,
        "n_threads_batch": threads,
        "seed": seed,
        "logits_all": False,
        "verbose": False,
    }
    if chat_format:
        settings["chat_format"] = chat_format
    serve = resources.files("sandbox.backends").joinpath("llama_serve.py").read_text()
    return ServerCommand(
        argv=["@python@", "@dir@/serve.py", "@socket@"],
        env={"CONFIG_FILE": "@dir@/server.json"},
        files={"server.json": json.dumps({"models": [settings]}), "serve.py": serve},
        model=model,
        image=image,
    )


class RemoteServer:
    """An endpoint someone else runs: nothing to start or stop, only to check."""

    def __init__(self, spec: OpenAISpec) -> None:
        self.spec = spec
        self._client = ChatClient(spec.url, spec.model)

    @property
    def client(self) -> ChatClient:
        """The shared client."""
        return self._client

    def start(self) -> None:
        """Check that the endpoint answers."""
        if not self._client.is_healthy(timeout=10):
            raise ServerStartError(
                f"the endpoint {self.spec.url} does not answer GET /models.",
                hint="Start the server, or check the URL (it usually ends in /v1).",
            )

    def stop(self) -> None:
        """Nothing to stop."""

    def is_alive(self) -> bool:
        """Assumed alive; failures surface as trial errors."""
        return True

    def describe_exit(self) -> str:
        """Nothing is known about a remote server's exit."""
        return f"endpoint {self.spec.url}"

    def close(self) -> None:
        """Close the client."""
        self._client.close()

    def take_egress(self) -> list[EgressEvent]:
        """A remote endpoint is not observed."""
        return []

    def capture(self) -> Capture:
        """A remote endpoint is not observed."""
        return "none"

    def fetch(self, url: str) -> str:
        """No sandbox here: nothing is fetched."""
        return NOT_FETCHED
