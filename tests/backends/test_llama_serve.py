"""The `gguf-tools` chat format with the real SmolLM2-135M-Instruct, in process.

Without tools it must format exactly as llama-cpp-python does from the GGUF's own template;
with tools the model's real calls come back as OpenAI tool calls, within max_tokens.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.backends.embedded import embedded_model
from sandbox.carriers import build_artifacts
from sandbox.scenarios import load_scenarios
from sandbox.workflows import render_request
from tests.helpers import SCENARIOS

llama_cpp = pytest.importorskip("llama_cpp")
from sandbox.backends import llama_serve  # noqa: E402 (needs llama_cpp)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("embedded_env")]
AGENT = SCENARIOS / "exfiltration" / "pacs-agent-prior-report-fetch-leak.yaml"
MESSAGES = [
    {"role": "system", "content": "You are a radiology reporting assistant."},
    {"role": "user", "content": "Write a one-line impression for a normal chest X-ray."},
]


@pytest.fixture(scope="module")
def llama() -> Iterator[Any]:
    llama_serve.llama_chat_format.register_chat_completion_handler(llama_serve.FORMAT)(
        llama_serve.gguf_tools_handler
    )
    path = embedded_model("smollm2-135m").ensure()
    model = llama_cpp.Llama(model_path=str(path), n_ctx=4096, n_threads=2, verbose=False)
    yield model
    model.close()


def _chat(llama: Any, chat_format: str | None, **kwargs: Any) -> Any:
    llama.chat_format = chat_format or "chat_template.default"
    return llama.create_chat_completion(temperature=0, seed=0, **kwargs)


def test_without_tools_it_answers_as_the_gguf_template_does(llama: Any) -> None:
    ours = _chat(llama, llama_serve.FORMAT, messages=MESSAGES, max_tokens=40)
    theirs = _chat(llama, None, messages=MESSAGES, max_tokens=40)
    assert ours["choices"][0]["message"]["content"]
    assert ours["choices"][0]["message"] == theirs["choices"][0]["message"]
    assert ours["usage"] == theirs["usage"]


def test_with_tools_the_model_calls_them_within_max_tokens(llama: Any) -> None:
    scenario = load_scenarios([AGENT]).files[0].scenario
    request = render_request(scenario, build_artifacts(scenario))
    messages = [m.to_openai() for m in request.messages]
    reply = _chat(llama, llama_serve.FORMAT, messages=messages, tools=request.tools, max_tokens=96)
    message = reply["choices"][0]["message"]
    names = {t["function"]["name"] for t in request.tools}
    calls = message.get("tool_calls") or []
    assert calls, message
    for call in calls:
        assert call["function"]["name"] in names
        assert call["id"].startswith("call_")
    assert len({c["id"] for c in calls}) == len(calls)
    assert reply["usage"]["completion_tokens"] <= 96
    if reply["choices"][0]["finish_reason"] != "length":
        assert all(isinstance(json.loads(c["function"]["arguments"]), dict) for c in calls)


def test_a_forced_tool_gets_arguments_of_its_schema(llama: Any) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "pacs_query",
                "parameters": {
                    "type": "object",
                    "properties": {"patient_id": {"type": "string"}},
                    "required": ["patient_id"],
                },
            },
        }
    ]
    forced = {"type": "function", "function": {"name": "pacs_query"}}
    reply = _chat(
        llama, llama_serve.FORMAT, messages=MESSAGES, tools=tools, tool_choice=forced, max_tokens=64
    )
    call = reply["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "pacs_query"
    if reply["choices"][0]["finish_reason"] != "length":
        assert set(json.loads(call["function"]["arguments"])) == {"patient_id"}


def test_tool_choice_none_is_plain_chat(llama: Any) -> None:
    tools = [{"type": "function", "function": {"name": "fetch_url", "parameters": {}}}]
    plain = _chat(llama, llama_serve.FORMAT, messages=MESSAGES, max_tokens=24)
    none = _chat(
        llama, llama_serve.FORMAT, messages=MESSAGES, tools=tools, tool_choice="none", max_tokens=24
    )
    assert none["choices"][0]["message"] == plain["choices"][0]["message"]


def test_the_conversation_history_is_plain_role_and_content() -> None:
    tools = [{"type": "function", "function": {"name": "pacs_query", "parameters": {}}}]
    call = {"function": {"name": "pacs_query", "arguments": '{"patient_id": "1"}'}}
    history = [
        {"role": "user", "content": "Look it up."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [call],
        },
        {"role": "tool", "content": "No studies found.", "tool_call_id": "call_1"},
    ]
    out = llama_serve.tool_messages(history, tools)
    assert out[0]["role"] == "system" and "functions.pacs_query:" in out[0]["content"]
    assert out[2] == {"role": "assistant", "content": 'functions.pacs_query:\n{"patient_id": "1"}'}
    assert out[3] == {"role": "tool", "content": "No studies found."}
