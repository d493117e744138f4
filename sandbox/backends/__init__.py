"""Backends: model specs, the OpenAI-compatible client, and the servers that serve models."""

from sandbox.backends.client import ChatClient
from sandbox.backends.prepare import ModelProvenance, PreparedModel, prepare_model
from sandbox.backends.server import ModelServer, ProcessServer, ServerCommand
from sandbox.backends.specs import (
    EmbeddedSpec,
    GgufSpec,
    ModelSpec,
    OpenAISpec,
    VllmSpec,
    parse_model_spec,
)

__all__ = [
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
    "parse_model_spec",
    "prepare_model",
]
