"""Plain-text clinical documents (dictations, prior reports, notes) with the payload inline."""

from __future__ import annotations

from sandbox.carriers.base import Artifact, Location, fill_payload, planted_text, register
from sandbox.scenarios.models import Input, Scenario

LOCATIONS = (Location("dictation"), Location("prior-report"), Location("note"))


@register("text", LOCATIONS, "plain-text documents: dictations, prior reports, notes")
def build_text(scenario: Scenario, item: Input) -> Artifact:
    """Put the payload where `{payload}` stands, or append it as a paragraph; clean: drop it."""
    planted = planted_text(scenario, item.payload) if item.payload else ""
    body = fill_payload(item.content, planted, "\n\n")
    body = "\n".join(line.rstrip() for line in body.splitlines()) + "\n"
    return Artifact(
        name=f"{item.kind}.txt",
        media_type="text/plain; charset=utf-8",
        kind=item.kind,
        data=body.encode("utf-8"),
        has_payload=bool(planted),
    )
