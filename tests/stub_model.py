"""A scripted OpenAI-compatible model server on a Unix socket, for tests that need a model that
calls tools on cue (the embedded base model never does). It stands in for the model only: the
sandbox, the tool loop and the egress capture around it are real.

Usage: python stub_model.py SOCKET  with STUB_SCRIPT='[{"tool_calls": [...]}, {"content": "..."}]'
The reply to a request is the script entry at index = assistant messages already in it.
"""

from __future__ import annotations

import json
import os
import socketserver
import sys
from http.server import BaseHTTPRequestHandler
from typing import Any

SCRIPT: list[dict[str, Any]] = json.loads(os.environ.get("STUB_SCRIPT", "[]"))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self._send({"object": "list", "data": [{"id": "model"}]})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        turn = sum(m["role"] == "assistant" for m in body["messages"])
        entry = SCRIPT[min(turn, len(SCRIPT) - 1)]
        calls = [
            {
                "id": f"call{turn}-{i}",
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
            }
            for i, c in enumerate(entry.get("tool_calls", []))
        ]
        message = {"role": "assistant", "content": entry.get("content", ""), "tool_calls": calls}
        self._send(
            {
                "choices": [{"message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5},
            }
        )

    def _send(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass

    def address_string(self) -> str:
        return "stub"


class Server(socketserver.UnixStreamServer):
    def get_request(self) -> tuple[Any, Any]:
        request, _ = super().get_request()
        return request, ("stub", 0)


if __name__ == "__main__":
    Server(sys.argv[1], Handler).serve_forever()
