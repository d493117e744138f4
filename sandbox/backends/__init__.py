"""Backends: model specs, the OpenAI-compatible client, and the servers that serve models."""

from sandbox.backends.client import ChatClient
from sandbox.backends.kinds import BACKENDS, Backend, parse_model_spec, prepare_model, spec_forms
from sandbox.backends.prepare import ModelProvenance, PreparedModel
from sandbox.backends.server import ModelServer, ProcessServer, ServerCommand
from sandbox.backends.specs import (
    EmbeddedSpec,
    GgufSpec,
    ModelSpec,
    OpenAISpec,
    VllmSpec,
    base_label,
    with_template,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "ChatClient",
    "EmbeddedSpec",
    "GgufSpec",
    "ModelProvenance",
    "ModelServer",
    "ModelSpec",
    "OpenAISpec",
    "PreparedModel",
    "ProcessServer",
    "ServerCommand",
    "VllmSpec",
    "base_label",
    "parse_model_spec",
    "prepare_model",
    "spec_forms",
    "with_template",
]
