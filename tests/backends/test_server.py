"""The launcher: llama-cpp-python's real server on a Unix socket, and how start-up fails."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from sandbox.backends import EmbeddedSpec, GgufSpec, ProcessServer, ServerCommand, prepare_model
from sandbox.chat import ChatRequest, Message, Sampling
from sandbox.errors import ServerStartError


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


@pytest.mark.slow
@pytest.mark.usefixtures("embedded_env")
def test_process_server_serves_the_embedded_model_over_a_unix_socket(tmp_path: Path) -> None:
    model = prepare_model(EmbeddedSpec(), Sampling(max_tokens=8), threads=2)
    server = model.make_server(tmp_path / "server.log")
    assert isinstance(server, ProcessServer)
    try:
        server.start()
        pid = server.pid
        assert pid is not None and server.socket_path.is_socket()
        request = ChatRequest(messages=[Message(role="user", content="Say hello.")])
        reply = server.client.chat(request, Sampling(max_tokens=8), timeout=60)
        assert reply.completion_tokens > 0
        assert reply.finish_reason in ("stop", "length")
    finally:
        server.close()
    assert _gone(pid)
    assert not server.socket_path.parent.exists()


@pytest.mark.slow
def test_process_server_start_failure_carries_the_log_tail(tmp_path: Path) -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (the llama extra)")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(256))
    model = prepare_model(GgufSpec(path=broken), Sampling(), threads=1)
    server = model.make_server(tmp_path / "server.log")
    with pytest.raises(ServerStartError) as caught:
        server.start()
    server.close()
    assert "exited during start-up" in caught.value.message
    assert "last log lines" in caught.value.message
    assert len(caught.value.message.splitlines()) > 2
    assert str(tmp_path / "server.log") in caught.value.hint


def test_process_server_that_never_listens_times_out_and_is_stopped(tmp_path: Path) -> None:
    command = ServerCommand(
        argv=[sys.executable, "-c", "import time; print('loading', flush=True); time.sleep(60)"],
        env={},
        start_timeout=1.0,
    )
    server = ProcessServer(command, tmp_path / "server.log")
    with pytest.raises(ServerStartError, match="did not answer within 1 s") as caught:
        server.start()
    assert "loading" in caught.value.message
    assert not server.is_alive()
    server.close()


def test_process_server_writes_config_files_and_substitutes_the_socket(tmp_path: Path) -> None:
    script = "import os,sys; print(open(os.environ['CFG']).read(), sys.argv[1], flush=True)"
    command = ServerCommand(
        argv=["@python@", "-c", script, "@socket@"],
        env={"CFG": "@dir@/server.json"},
        files={"server.json": '{"models": [{"n_ctx": 4096}]}'},
        start_timeout=0.5,
    )
    server = ProcessServer(command, tmp_path / "server.log")
    with pytest.raises(ServerStartError):
        server.start()
    log = (tmp_path / "server.log").read_text()
    assert '{"models": [{"n_ctx": 4096}]}' in log
    assert str(server.socket_path) in log
    server.close()
