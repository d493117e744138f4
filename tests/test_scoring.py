"""Reading transcripts for `sandbox score`: text, JSON objects, message lists, and bad input."""

from __future__ import annotations

import pytest

from sandbox.carriers import build_artifacts
from sandbox.chat import ToolCall
from sandbox.errors import TranscriptError
from sandbox.scenarios import Scenario
from sandbox.scoring import parse_transcript, replay_calls
from sandbox.tools import ToolContext
from sandbox.workflows import render_request
from tests.helpers import scenario_data


def test_plain_text_is_the_output() -> None:
    transcript = parse_transcript("FINDINGS: 9 mm nodule.")

    assert (transcript.output, list(transcript.tool_calls), transcript.capture) == (
        "FINDINGS: 9 mm nodule.",
        [],
        "none",
    )


def test_json_object_with_calls_and_egress() -> None:
    transcript = parse_transcript(
        '{"output": "ok", "tool_calls": [{"name": "fetch_url", "arguments": {"url": "u"}}],'
        ' "egress": [{"t": 1, "kind": "dns", "host": "x.example"}]}'
    )

    assert transcript.output == "ok"
    assert [(c.name, c.arguments) for c in transcript.tool_calls] == [("fetch_url", '{"url": "u"}')]
    assert [e.host for e in transcript.egress] == ["x.example"]
    assert transcript.capture == "complete"


def test_openai_message_list_gives_assistant_text_and_calls() -> None:
    transcript = parse_transcript(
        '[{"role": "user", "content": "hi"},'
        ' {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",'
        ' "function": {"name": "pacs_query", "arguments": "{}"}}]},'
        ' {"role": "tool", "content": "result", "tool_call_id": "c1"},'
        ' {"role": "assistant", "content": "done"}]'
    )

    assert transcript.output == "done"
    assert [(c.name, c.call_id) for c in transcript.tool_calls] == [("pacs_query", "c1")]


def test_json_scalar_is_text_unless_json_is_required() -> None:
    assert parse_transcript("42").output == "42"
    with pytest.raises(TranscriptError, match="object or a list"):
        parse_transcript("42", as_json=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"output": 3}', "`output` must be a string"),
        ('{"answer": "x"}', "unknown key"),
        ('{"tool_calls": {}}', "`tool_calls` must be a list"),
        ('{"tool_calls": [{"function": "x"}]}', "`function` must be an object"),
        ('{"tool_calls": [{"arguments": "{}"}]}', "needs a `name`"),
        ('{"egress": 5}', "`egress` must be a list"),
        ('{"egress": [{"t": "soon"}]}', "an egress event is invalid: t: "),
        ('{"capture": "maybe"}', "`capture` must be one of"),
        ("[1]", "each message"),
    ],
)
def test_malformed_transcripts_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(TranscriptError, match=message):
        parse_transcript(text)


def test_calls_in_a_workflow_without_tools_are_recorded_never_carried_out() -> None:
    scenario = Scenario.model_validate(scenario_data())  # report-draft offers no tools
    artifacts = build_artifacts(scenario)
    request = render_request(scenario, artifacts)
    context = ToolContext(scenario, artifacts, lambda _url: "fetched")
    call = ToolCall(name="fetch_url", arguments='{"url": "http://x.example/"}')

    outcomes = replay_calls(scenario, request, context, [call])

    assert request.tools == []
    assert [(o.allowed, o.result, o.note) for o in outcomes] == [(False, "", "no tools offered")]
