"""A GGUF copied with another chat template: same weights, same metadata, new template.

How a template backdoor is shipped (and how `--template reference` undoes one): gguf-py's own
`copy_with_new_metadata` rewrites the header and copies every tensor unchanged.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE_KEY = "tokenizer.chat_template"


def with_template(source: Path, dest: Path, template: str) -> Path:
    """Write `dest`: `source` with its chat template replaced by `template`."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    reader = gguf.GGUFReader(source)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(dest, arch=arch, endianess=reader.endianess)
    alignment = reader.fields.get(gguf.Keys.General.ALIGNMENT)
    if alignment is not None:
        writer.data_alignment = alignment.contents()
    new = {TEMPLATE_KEY: MetadataDetails(gguf.GGUFValueType.STRING, template)}
    copy_with_new_metadata(reader, writer, new, [])
    return dest
