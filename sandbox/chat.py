"""The chat shapes shared by workflows, backends, detectors and the store (types only)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "tool"]
    content: str


class ToolCall(BaseModel):
    """A tool call the model asked for, with its arguments as the model wrote them."""

    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: str = Field(description="JSON text exactly as the model produced it.")
    call_id: str = ""


class ChatRequest(BaseModel):
    """What a workflow sends to a model: messages and the tools it offers."""

    model_config = ConfigDict(extra="forbid")

    messages: list[Message]
    tools: list[dict[str, Any]] = Field(default_factory=list)


class Sampling(BaseModel):
    """Sampling parameters, recorded with every model; temperature 0 and a fixed seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = Field(512, ge=1)
    seed: int = Field(0, ge=0)


class ChatReply(BaseModel):
    """What the model answered."""

    model_config = ConfigDict(extra="forbid")

    content: str
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
