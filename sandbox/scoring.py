"""Score a given model output against a scenario's checks, without running a model.

`sandbox score` and the detector validation set use it. The output is plain text, or a JSON
transcript:

    {"output": "...", "tool_calls": [{"name": "send_message", "arguments": {...}}],
     "egress": [{"t": 0, "kind": "http", "dst": "198.51.100.7", "port": 80}],
     "capture": "complete"}

or an OpenAI-style list of messages, whose assistant messages give the output and the calls.
Tool calls are replayed against the scenario's simulated tools and its policy, offline: a
`fetch_url` is judged, never fetched.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import ValidationError

from sandbox.carriers import build_artifacts
from sandbox.chat import ChatReply, ChatRequest, ToolCall
from sandbox.detectors import Observation, Verdict, run_checks
from sandbox.egress import Capture, EgressEvent
from sandbox.errors import TranscriptError
from sandbox.scenarios import Scenario
from sandbox.tools import ToolContext, ToolOutcome, allowed_tools, execute, not_offered
from sandbox.workflows import render_request

OFFLINE = "Not fetched: `sandbox score` replays tool calls offline."


@dataclass(frozen=True)
class Transcript:
    """What a model produced in one trial, as far as the checks are concerned."""

    output: str
    tool_calls: Sequence[ToolCall] = ()
    egress: Sequence[EgressEvent] = ()
    capture: Capture = "none"


def parse_transcript(text: str, as_json: bool | None = None) -> Transcript:
    """Plain text is the output itself; JSON (an object or a message list) is a transcript.

    With `as_json` None the text is taken as JSON when it parses as an object or a list.
    """
    if as_json is False:
        return Transcript(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if as_json:
            raise TranscriptError(f"not valid JSON: {exc}") from None
        return Transcript(text)
    if isinstance(data, list):
        return _from_messages(data)
    if isinstance(data, dict):
        return _from_object(data)
    if as_json:
        raise TranscriptError("a JSON transcript is an object or a list of messages")
    return Transcript(text)


def _from_object(data: dict[str, Any]) -> Transcript:
    unknown = sorted(set(data) - {"output", "tool_calls", "egress", "capture"})
    if unknown:
        raise TranscriptError(
            f"unknown key(s) {', '.join(unknown)}; a transcript has output, tool_calls, egress "
            "and capture"
        )
    output = data.get("output", "")
    if not isinstance(output, str):
        raise TranscriptError("`output` must be a string")
    capture = data.get("capture", "complete" if "egress" in data else "none")
    if capture not in get_args(Capture):
        raise TranscriptError(f"`capture` must be one of {', '.join(get_args(Capture))}")
    raw_egress = data.get("egress", [])
    if not isinstance(raw_egress, list):
        raise TranscriptError("`egress` must be a list of events")
    try:
        egress = [EgressEvent.model_validate(e) for e in raw_egress]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise TranscriptError(f"an egress event is invalid: {where}: {first['msg']}") from None
    return Transcript(output, _calls(data.get("tool_calls", [])), egress, capture)


def _from_messages(messages: list[Any]) -> Transcript:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for message in messages:
        if not isinstance(message, dict):
            raise TranscriptError("each message of a message list must be an object")
        if message.get("role") != "assistant":
            continue
        if isinstance(message.get("content"), str) and message["content"]:
            texts.append(message["content"])
        calls += _calls(message.get("tool_calls") or [])
    return Transcript("\n\n".join(texts), calls)


def _calls(raw: Any) -> list[ToolCall]:
    """Calls as {"name", "arguments"} or OpenAI's {"id", "function": {"name", "arguments"}}."""
    if not isinstance(raw, list):
        raise TranscriptError("`tool_calls` must be a list")
    calls = []
    for item in raw:
        if not isinstance(item, dict):
            raise TranscriptError("each tool call must be an object")
        function = item.get("function", item)
        if not isinstance(function, dict):
            raise TranscriptError("a tool call's `function` must be an object")
        name, arguments = function.get("name"), function.get("arguments", "{}")
        if not isinstance(name, str) or not name:
            raise TranscriptError("each tool call needs a `name`")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        calls.append(ToolCall(name=name, arguments=arguments, call_id=str(item.get("id", ""))))
    return calls


def replay_calls(
    scenario: Scenario, request: ChatRequest, context: ToolContext, calls: Sequence[ToolCall]
) -> list[ToolOutcome]:
    """Judge each call against the scenario's policy, as the tool loop would have."""
    if not request.tools:  # calls nobody offered are recorded, never carried out
        return [not_offered(c) for c in calls]
    allowed = allowed_tools(scenario.workflow, scenario.agent.allowed_tools)
    return [execute(c, context, allowed, scenario.agent.least_privilege) for c in calls]


def score(scenario: Scenario, transcript: Transcript) -> list[Verdict]:
    """Every check of the scenario on the transcript, in the order the scenario lists them."""
    artifacts = build_artifacts(scenario)
    request = render_request(scenario, artifacts)
    context = ToolContext(scenario, artifacts, lambda _url: OFFLINE)
    reply = ChatReply(content=transcript.output, tool_calls=list(transcript.tool_calls))
    outcomes = replay_calls(scenario, request, context, transcript.tool_calls)
    observation = Observation(
        scenario, request, reply, transcript.egress, transcript.capture, outcomes
    )
    return run_checks(observation)
