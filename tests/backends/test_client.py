"""The OpenAI-compatible client over TCP and over a Unix socket, against a local stub server.

The stub stands in for a model server so that the client's own behaviour (request body, reply
parsing, errors, time-outs) is tested without a model; the real server is in test_server.py.
"""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sandbox.backends import ChatClient
from sandbox.chat import ChatRequest, Message, Sampling
from sandbox.errors import BackendError, TrialTimeoutError

COMPLETION = {
    "choices": [
        {
            "message": {
                "role": "assistant",
                "content": "FINDINGS: 9 mm nodule.",
                "tool_calls": [
                    {"id": "c1", "function": {"name": "send_message", "arguments": '{"to": "x"}'}}
                ],
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 120, "completion_tokens": 7},
}


class Handler(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    reply: tuple[int, Any] = (200, COMPLETION)
    delay = 0.0

    def do_GET(self) -> None:  # noqa: N802
        self._send(200, {"data": [{"id": "model"}]} if self.path == "/v1/models" else {})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers["Content-Length"])
        Handler.received.append({"path": self.path, **json.loads(self.rfile.read(length))})
        time.sleep(Handler.delay)
        self._send(*Handler.reply)

    def _send(self, status: int, body: Any) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass

    def address_string(self) -> str:
        return "stub"


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self) -> tuple[Any, Any]:
        request, _ = super().get_request()
        return request, ("local", 0)


@pytest.fixture(autouse=True)
def reset_handler() -> None:
    Handler.received, Handler.reply, Handler.delay = [], (200, COMPLETION), 0.0


def _serve(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield
    server.shutdown()
    server.server_close()


@pytest.fixture
def tcp_client() -> Iterator[ChatClient]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    for _ in _serve(server):
        client = ChatClient(f"http://127.0.0.1:{server.server_address[1]}/v1", "model")
        yield client
        client.close()


@pytest.fixture
def uds_client(tmp_path: Path) -> Iterator[ChatClient]:
    socket_path = tmp_path / "m.sock"
    server = UnixHTTPServer(str(socket_path), Handler)
    for _ in _serve(server):
        client = ChatClient.over_socket(socket_path, "model")
        yield client
        client.close()


REQUEST = ChatRequest(messages=[Message(role="user", content="Draft the report.")])


@pytest.mark.parametrize("which", ["tcp_client", "uds_client"])
def test_chat_client_sends_sampling_and_parses_the_reply(
    which: str, request: pytest.FixtureRequest
) -> None:
    client: ChatClient = request.getfixturevalue(which)
    assert client.is_healthy()
    reply = client.chat(REQUEST, Sampling(max_tokens=64, seed=3), timeout=5)
    assert reply.content == "FINDINGS: 9 mm nodule."
    assert reply.tool_calls[0].name == "send_message"
    assert reply.tool_calls[0].arguments == '{"to": "x"}'
    assert (reply.prompt_tokens, reply.completion_tokens) == (120, 7)
    [sent] = Handler.received
    assert sent["path"] == "/v1/chat/completions"
    assert (sent["temperature"], sent["seed"], sent["max_tokens"]) == (0.0, 3, 64)
    assert sent["messages"] == [{"role": "user", "content": "Draft the report."}]
    assert "tools" not in sent


def test_chat_client_reports_http_errors_with_the_body(tcp_client: ChatClient) -> None:
    Handler.reply = (500, "model exploded")
    with pytest.raises(BackendError, match="HTTP 500: model exploded"):
        tcp_client.chat(REQUEST, Sampling(), timeout=5)


def test_chat_client_rejects_a_malformed_completion(tcp_client: ChatClient) -> None:
    Handler.reply = (200, {"choices": []})
    with pytest.raises(BackendError, match="malformed chat completion"):
        tcp_client.chat(REQUEST, Sampling(), timeout=5)


def test_chat_client_times_out(uds_client: ChatClient) -> None:
    Handler.delay = 1.0
    with pytest.raises(TrialTimeoutError, match="within 0.2 s"):
        uds_client.chat(REQUEST, Sampling(), timeout=0.2)


# httpcore's connect_unix_socket does not close its socket when connect() fails; the garbage
# collector does, with a ResourceWarning that is not ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_chat_client_unreachable_socket_is_a_backend_error(tmp_path: Path) -> None:
    client = ChatClient.over_socket(tmp_path / "absent.sock", "model")
    assert not client.is_healthy()
    with pytest.raises(BackendError, match="failed"):
        client.chat(REQUEST, Sampling(), timeout=1)
    client.close()
