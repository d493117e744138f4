"""Runs inside the model's sandbox: llama-cpp-python's server with a tool-calling chat handler.

The sandbox has llama-cpp-python, not this project, so the harness ships this file as it is
(`ServerCommand.files`) and runs `python serve.py SOCKET`. It registers the chat format
`gguf-tools` and serves llama-cpp-python's own app on the Unix socket:

- a request without tools is formatted by the GGUF's own chat template, exactly as
  llama-cpp-python applies it when no format is named (the model runs as its authors meant);
- a request with tools uses the same template, with the functions described in the system
  message in the words of llama-cpp-python's `chatml-function-calling`; a grammar makes the
  model choose between `message:` and `functions.NAME:`, and the arguments are constrained to
  the tool's JSON schema. `max_tokens` bounds the whole reply.

Why not `chatml-function-calling` itself (0.3.36): it generates tool arguments with
`max_tokens=None` (SmolLM2-135M on a PACS-agent request filled the 4096-token context and the
request failed with "Requested tokens (4097) exceed context window"), it ignores tools unless
`tool_choice` is sent (OpenAI's default is "auto"), and, as its source reads, a chosen message is
generated under the grammar meant for the next tool name, which leaves the message empty.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from typing import Any

import uvicorn
from llama_cpp import Llama, llama_chat_format, llama_grammar

FORMAT = "gguf-tools"
MAX_CALLS = 4  # tool calls in one reply
CHOICE_TOKENS = 16  # enough for "functions.get_prior_report:"
TOOLS_PREAMBLE = (
    "\n\nYou have access to the following functions:\n{functions}\n\n"
    "You can respond to users messages with either a single message or one or more function "
    "calls.\n\nTo respond with a message begin the message with 'message:', use the following "
    "format:\n\nmessage:\n<message>\n\nTo respond with one or more function calls begin the "
    "message with 'functions.<function_name>:', use the following format:\n\n"
    'functions.<function_name>:\n{{ "arg1": "value1", "arg2": "value2" }}\n'
    'functions.<function_name>:\n{{ "arg1": "value1", "arg2": "value2" }}'
)
SAMPLING_KEYS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "typical_p",
    "presence_penalty",
    "frequency_penalty",
    "repeat_penalty",
)


def gguf_formatter(llama: Llama) -> llama_chat_format.Jinja2ChatFormatter:
    """The GGUF's own chat template, with its BOS and EOS tokens (as llama-cpp-python does)."""
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise ValueError("the GGUF has no chat template; serve it with a named chat format")
    eos, bos = llama.token_eos(), llama.token_bos()
    return _formatter(template, _token_text(llama, eos), _token_text(llama, bos), eos)


@functools.cache
def _formatter(
    template: str, eos: str, bos: str, eos_id: int
) -> llama_chat_format.Jinja2ChatFormatter:
    """Compiled once per template (a server serves one model), not once per request."""
    return llama_chat_format.Jinja2ChatFormatter(
        template=template, eos_token=eos, bos_token=bos, stop_token_ids=[eos_id]
    )


def _token_text(llama: Llama, token: int) -> str:
    return llama.detokenize([token], special=True).decode(errors="replace") if token >= 0 else ""


def describe_tools(tools: list[dict[str, Any]]) -> str:
    """The functions as the system message lists them."""
    lines = [
        f"\nfunctions.{t['function']['name']}:\n{json.dumps(t['function'].get('parameters', {}))}"
        for t in tools
    ]
    return TOOLS_PREAMBLE.format(functions="\n".join(lines))


def tool_messages(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[Any]:
    """The conversation as plain role/content messages any chat template can render."""
    preamble = describe_tools(tools)
    out: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content") or ""
        if message["role"] == "system":
            content += preamble
            preamble = ""
        if message["role"] == "assistant":
            calls = [
                f"functions.{c['function']['name']}:\n{c['function']['arguments']}"
                for c in message.get("tool_calls") or []
            ]
            content = "\n".join(([f"message:\n{content}"] if content else []) + calls)
        out.append({"role": message["role"], "content": content})
    if preamble:
        out.insert(0, {"role": "system", "content": preamble.lstrip()})
    return out


class _Budget:
    """Tokens left of max_tokens, and the completions that spent them."""

    def __init__(self, max_tokens: int | None, llama: Llama) -> None:
        self.left = max_tokens or llama.n_ctx()
        self.prompt_tokens = 0  # the conversation's, as the first completion counted it
        self.completion_tokens = 0
        self.hit_limit = False

    def spend(self, completion: Any) -> str:
        self.prompt_tokens = self.prompt_tokens or completion["usage"]["prompt_tokens"]
        used = completion["usage"]["completion_tokens"]
        self.completion_tokens += used
        self.left -= used
        self.hit_limit |= completion["choices"][0]["finish_reason"] == "length"
        return str(completion["choices"][0]["text"])


def gguf_tools_handler(
    llama: Llama,
    messages: list[Any],
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    max_tokens: int | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> Any:
    """The `gguf-tools` chat format (see the module docstring)."""
    if not tools or tool_choice == "none":
        handler = llama_chat_format.chat_formatter_to_chat_completion_handler(gguf_formatter(llama))
        return handler(llama=llama, messages=messages, max_tokens=max_tokens, seed=seed, **kwargs)
    if seed is not None:
        llama.set_seed(seed)
    sampling = {k: kwargs[k] for k in SAMPLING_KEYS if kwargs.get(k) is not None}
    formatted = gguf_formatter(llama)(messages=tool_messages(messages, tools))
    prompt, stop = formatted.prompt, formatted.stop or []
    stop = [stop] if isinstance(stop, str) else list(stop)
    budget = _Budget(max_tokens, llama)
    names = [t["function"]["name"] for t in tools]
    forced = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else None
    choice = f"functions.{forced}:" if forced in names else None
    if choice is None:
        options = ([] if tool_choice == "required" else ['"message:"']) + [
            json.dumps(f"functions.{n}:") for n in names
        ]
        choice = _complete(llama, prompt, budget, sampling, " | ".join(options), CHOICE_TOKENS)
    if choice.startswith("message:"):
        text = _complete(llama, prompt + "message:\n", budget, sampling, None, budget.left, stop)
        return _reply(llama, text.strip(), [], budget)
    calls: list[dict[str, Any]] = []
    call_base = hashlib.sha256(prompt.encode()).hexdigest()[:8]  # unique per turn, reproducible
    while (name := choice.removeprefix("functions.").removesuffix(":")) in names:
        prompt += f"{choice}\n"
        tool = tools[names.index(name)]
        arguments = _arguments(llama, prompt, budget, sampling, tool)
        calls.append(_call(call_base, len(calls), name, arguments))
        prompt += arguments + "\n"
        if budget.left <= 0 or len(calls) == MAX_CALLS:
            break
        more = " | ".join(json.dumps(f"functions.{n}:") for n in names)  # or nothing: done
        choice = _complete(llama, prompt, budget, sampling, f"( {more} )?", CHOICE_TOKENS, stop)
    return _reply(llama, "", calls, budget)


def _arguments(
    llama: Llama, prompt: str, budget: _Budget, sampling: dict[str, Any], tool: dict[str, Any]
) -> str:
    schema = json.dumps(tool["function"].get("parameters") or {"type": "object"})
    try:
        grammar = llama_grammar.LlamaGrammar.from_json_schema(schema, verbose=False)
    except (ValueError, RuntimeError, KeyError):
        grammar = llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)
    return _complete(llama, prompt, budget, sampling, grammar, budget.left).strip()


def _complete(
    llama: Llama,
    prompt: str,
    budget: _Budget,
    sampling: dict[str, Any],
    grammar: Any,
    max_tokens: int,
    stop: list[str] | None = None,
) -> str:
    if isinstance(grammar, str):
        grammar = llama_grammar.LlamaGrammar.from_string(f"root ::= {grammar}", verbose=False)
    completion = llama.create_completion(
        prompt=prompt,
        max_tokens=max(1, min(max_tokens, budget.left)),
        stop=stop or [],
        grammar=grammar,
        stream=False,
        **sampling,
    )
    return budget.spend(completion)


def _call(base: str, index: int, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": f"call_{base}_{index}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _reply(llama: Llama, content: str, calls: list[dict[str, Any]], budget: _Budget) -> Any:
    finish = "length" if budget.hit_limit else "tool_calls" if calls else "stop"
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": "chatcmpl-gguf-tools",
        "object": "chat.completion",
        "created": 0,
        "model": llama.model_path,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": budget.prompt_tokens,
            "completion_tokens": budget.completion_tokens,
            "total_tokens": budget.prompt_tokens + budget.completion_tokens,
        },
    }


def main(socket_path: str) -> None:
    """Register the chat format, then serve llama-cpp-python's app (CONFIG_FILE) on the socket."""
    llama_chat_format.register_chat_completion_handler(FORMAT)(gguf_tools_handler)
    uvicorn.run(
        "llama_cpp.server.app:create_app",
        factory=True,
        uds=socket_path,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main(sys.argv[1])
