"""An OpenAI-compatible chat client over TCP or a Unix socket (httpx)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from sandbox.chat import ChatReply, ChatRequest, Sampling, ToolCall
from sandbox.errors import BackendError, TrialTimeoutError

UDS_BASE_URL = "http://model.sandbox"
MAX_REPLY_BYTES = 16 << 20  # a chat completion is kilobytes; a flood must not fill the harness


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
        """Send one chat request and wait `timeout` seconds in all, however the reply trickles.

        Transport failures become BackendError, the deadline TrialTimeoutError; a reply over
        MAX_REPLY_BYTES is refused. The request runs in a worker thread so the deadline holds
        even while a read blocks; the worker stops at its next byte (or when the runner
        restarts the server).
        """
        body = _request_body(self.model, request, sampling)
        deadline = time.monotonic() + timeout
        outcome: list[Any] = []
        worker = threading.Thread(
            target=self._post, args=(body, timeout, deadline, outcome), daemon=True
        )
        worker.start()
        worker.join(timeout)
        if not outcome:
            raise TrialTimeoutError(f"no whole answer from {self.where} within {timeout:g} s")
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        return parse_reply(outcome[0])

    def _post(self, body: Any, timeout: float, deadline: float, outcome: list[Any]) -> None:
        # Errors are not chained: their frames would keep httpcore's sockets alive.
        try:
            outcome.append(self._read_reply(body, timeout, deadline))
        except (BackendError, TrialTimeoutError) as exc:
            outcome.append(exc)
        except httpx.TimeoutException:
            outcome.append(TrialTimeoutError(f"no answer from {self.where} within {timeout:g} s"))
        except httpx.HTTPError as exc:
            outcome.append(BackendError(f"request to {self.where} failed: {exc!r}"))

    def _read_reply(self, body: Any, timeout: float, deadline: float) -> Any:
        with self._http.stream("POST", "/chat/completions", json=body, timeout=timeout) as reply:
            data = bytearray()
            for chunk in reply.iter_bytes():
                data += chunk
                if len(data) > MAX_REPLY_BYTES:
                    raise BackendError(
                        f"{self.where} sent a reply over {MAX_REPLY_BYTES >> 20} MiB; refused."
                    )
                if time.monotonic() > deadline:
                    raise TrialTimeoutError(f"{self.where} was still answering at the deadline")
        if reply.status_code != 200:
            text = data[:500].decode(errors="replace")
            raise BackendError(f"{self.where} answered HTTP {reply.status_code}: {text}")
        try:
            return json.loads(data)
        except ValueError as exc:
            raise BackendError(
                f"{self.where} sent a reply that is not JSON: {data[:200]!r}"
            ) from exc


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
