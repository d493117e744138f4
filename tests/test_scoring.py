"""Reading transcripts for `sandbox score`: text, JSON objects, message lists, and bad input."""

from __future__ import annotations

import pytest

from sandbox.errors import TranscriptError
from sandbox.scoring import parse_transcript


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
