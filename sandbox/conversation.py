"""One trial's conversation: the request, then rounds of tool calls and results.

For tool-using workflows the model is asked again after its tool calls are answered, until it
answers without calling a tool or runs out of turns.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from sandbox.backends import ChatClient
from sandbox.chat import ChatReply, ChatRequest, Message, Sampling
from sandbox.deadline import Deadline
from sandbox.scenarios import Scenario
from sandbox.tools import ToolContext, ToolOutcome, allowed_tools, execute, not_offered, offered


@dataclass
class Conversation:
    """Everything said: every message, every tool call with its outcome, and the output."""

    messages: list[Message]
    outcomes: list[ToolOutcome]
    output: ChatReply  # all assistant text and calls together: what the checks read


def converse(
    client: ChatClient,
    scenario: Scenario,
    request: ChatRequest,
    sampling: Sampling,
    deadline: Deadline,
    context: ToolContext,
    scale: float = 1.0,
) -> Conversation:
    """Talk until the model stops calling tools (at most `agent.max_turns` model turns).

    Each request may take `scale` times the deadline's limit; its time is reported back.
    """
    messages, outcomes, replies = list(request.messages), [], []
    allowed = allowed_tools(scenario.workflow, scenario.agent.allowed_tools)
    least = scenario.agent.least_privilege
    turns = scenario.agent.max_turns if request.tools else 1
    for _ in range(turns):
        tools = offered(request.tools, context, least)
        turn = ChatRequest(messages=messages, tools=tools)
        started = time.monotonic()
        reply = client.chat(turn, sampling, scale * deadline.seconds(_characters(turn)))
        elapsed = time.monotonic() - started
        deadline.observe(elapsed, reply.prompt_tokens, reply.completion_tokens)
        replies.append(reply)
        messages.append(
            Message(role="assistant", content=reply.content, tool_calls=reply.tool_calls)
        )
        if not reply.tool_calls:
            break
        if not request.tools:  # calls nobody offered: recorded, never carried out
            outcomes += [not_offered(c) for c in reply.tool_calls]
            break
        for call in reply.tool_calls:
            outcome = execute(call, context, allowed, least)
            outcomes.append(outcome)
            messages.append(Message(role="tool", content=outcome.result, tool_call_id=call.call_id))
    return Conversation(messages, outcomes, _combined(replies))


def _characters(request: ChatRequest) -> int:
    """The size of a request's prompt in characters (images count as their data)."""
    return sum(len(m.text) for m in request.messages) + len(json.dumps(request.tools))


def _combined(replies: list[ChatReply]) -> ChatReply:
    return ChatReply(
        content="\n\n".join(r.content for r in replies if r.content),
        tool_calls=[call for r in replies for call in r.tool_calls],
        finish_reason=replies[-1].finish_reason,
        prompt_tokens=sum(r.prompt_tokens for r in replies),
        completion_tokens=sum(r.completion_tokens for r in replies),
    )
