"""An OpenAI-compatible chat client over TCP or a Unix socket (httpx)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from sandbox.chat import ChatReply, ChatRequest, Sampling, ToolCall
from sandbox.errors import BackendError, TrialTimeoutError

UDS_BASE_URL = "http://model.sandbox"


class ChatClient:
    """Speaks `/v1/chat/completions` to one server; thread-safe (httpx.Client is)."""

    def __init__(
        self, base_url: str, model: str, *, uds: Path | None = None, api_key: str = ""
    ) -> None:
        transport = httpx.HTTPTransport(uds=str(uds)) if uds else None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self.where = f"unix:{uds}" if uds else base_url
        self._http = httpx.Client(
            base_url=base_url, transport=transport, headers=headers, trust_env=False
        )

    @classmethod
    def over_socket(cls, socket_path: Path, model: str) -> ChatClient:
        """A client for a server listening on a Unix socket."""
        return cls(f"{UDS_BASE_URL}/v1", model, uds=socket_path)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def is_healthy(self, timeout: float = 2.0) -> bool:
        """True when `/models` answers 200 (llama-cpp-python has no /health)."""
        try:
            return self._http.get("/models", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def chat(self, request: ChatRequest, sampling: Sampling, timeout: float) -> ChatReply:
        """Send one chat request; transport failures become BackendError, time-outs their own."""
        body = _request_body(self.model, request, sampling)
        try:
            response = self._http.post("/chat/completions", json=body, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise TrialTimeoutError(f"no answer from {self.where} within {timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"request to {self.where} failed: {exc!r}") from exc
        if response.status_code != 200:
            raise BackendError(
                f"{self.where} answered HTTP {response.status_code}: {response.text[:500]}"
            )
        return parse_reply(response.json())


def _request_body(model: str, request: ChatRequest, sampling: Sampling) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [m.to_openai() for m in request.messages],
        **sampling.model_dump(),
    }
    if request.tools:
        body["tools"] = request.tools
    return body


def parse_reply(data: Any) -> ChatReply:
    """Turn an OpenAI chat completion into a ChatReply; a malformed one is a BackendError."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        usage = data.get("usage") or {}
        calls = [
            ToolCall(
                name=call["function"]["name"],
                arguments=_arguments_text(call["function"].get("arguments", "")),
                call_id=call.get("id") or "",
            )
            for call in message.get("tool_calls") or []
        ]
        return ChatReply(
            content=message.get("content") or "",
            tool_calls=calls,
            finish_reason=choice.get("finish_reason") or "",
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
        )
    except (KeyError, IndexError, TypeError) as exc:
        raise BackendError(f"malformed chat completion: {json.dumps(data)[:500]}") from exc


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)
