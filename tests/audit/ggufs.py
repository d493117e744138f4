"""Small GGUF files written with gguf-py's own writer, for the audit's unit tests."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

TOKENS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "hello", "world"]
TYPES = [2, 3, 3, 3, 3, 1, 1]


def write_gguf(
    path: Path,
    template: str | None,
    tokens: list[str] = TOKENS,
    types: list[int] = TYPES,
    eos: int = 2,
    basename: str = "smollm2",
) -> Path:
    """A one-tensor llama GGUF with this template, vocabulary and end-of-sequence token."""
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_basename(basename)
    writer.add_size_label("135M")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_eos_token_id(eos)
    if template is not None:
        writer.add_chat_template(template)
    writer.add_tensor("token_embd.weight", np.zeros((len(tokens), 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
