"""The chat shapes shared by workflows, backends, detectors and the store (types only)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ToolCall(BaseModel):
    """A tool call the model asked for, with its arguments as the model wrote them."""

    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: str = Field(description="JSON text exactly as the model produced it.")
    call_id: str = ""


class Message(BaseModel):
    """One chat message: text, or content parts (text and images) for vision models."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]]
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str = ""

    @property
    def text(self) -> str:
        """The text of the message; image parts appear as '[image]'."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(
            part.get("text", "") if part.get("type") == "text" else "[image]"
            for part in self.content
        )

    def to_openai(self) -> dict[str, Any]:
        """The message in the OpenAI chat wire format."""
        wire: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            wire["tool_calls"] = [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        if self.role == "tool":
            wire["tool_call_id"] = self.tool_call_id
        return wire


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
