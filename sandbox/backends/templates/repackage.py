"""A GGUF copied with another chat template: same weights, same metadata, new template.

How a template backdoor is shipped, and how `--template reference` undoes one: gguf-py's own
`copy_with_new_metadata` rewrites the header and copies every tensor unchanged.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING
from unittest.mock import patch

from sandbox.backends.files import sha256_file
from sandbox.backends.templates import REFERENCE, REFERENCES, Reference, reference_for
from sandbox.errors import ModelSpecError
from sandbox.paths import cache_dir

if TYPE_CHECKING:
    from gguf import GGUFReader

TEMPLATE_KEY = "tokenizer.chat_template"


def with_template(source: Path, dest: Path, template: str) -> Path:
    """Write `dest`: `source` with its chat template replaced by `template`."""
    import gguf

    _copy(gguf.GGUFReader(source), dest, template)
    return dest


def templated(source: Path, template: str) -> Path:
    """`source` with `template` (REFERENCE: its family's; otherwise a template file's path).

    The copy is built once into the cache, keyed by the file's SHA-256 and the template, and
    written whole or not at all. A family without a reference, or a template file that is
    missing, is a ModelSpecError.
    """
    if template == REFERENCE:
        text, what = None, "\0".join(r.sha256 for r in REFERENCES)
    else:
        text = _template_file(Path(template))
        what = hashlib.sha256(text.encode()).hexdigest()
    key = hashlib.sha256(f"{sha256_file(source)}\0{template == REFERENCE}\0{what}".encode())
    dest = cache_dir() / "templated" / f"{key.hexdigest()[:32]}.gguf"
    if dest.is_file():
        return dest
    import gguf

    reader = gguf.GGUFReader(source)
    if text is None:
        text = _reference_of(reader, source).text
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(f".{os.getpid()}.tmp")
    try:
        _copy(reader, partial, text)
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    return dest


def _reference_of(reader: GGUFReader, source: Path) -> Reference:
    """The reference of the file's family (general.architecture and general.basename)."""
    fields = {
        key: reader.fields[key].contents() if key in reader.fields else ""
        for key in ("general.architecture", "general.basename")
    }
    arch, basename = str(fields["general.architecture"]), str(fields["general.basename"])
    reference = reference_for(arch, basename)
    if reference is None:
        known = ", ".join(f"{r.architecture}/{r.basename}" for r in REFERENCES)
        raise ModelSpecError(
            f"no reference chat template is known for {source.name} "
            f"(architecture {arch or '?'}, basename {basename or '?'}).",
            hint=f"Pass --template PATH to a template file. References: {known}.",
        )
    return reference


def _template_file(path: Path) -> str:
    """A template file's text; it must parse as Jinja, or the server would fail to start."""
    import jinja2

    try:
        text = path.expanduser().read_text()
        jinja2.Environment().parse(text)
    except OSError as exc:
        raise ModelSpecError(
            f"template {path}: {exc.strerror or exc}.", hint="Pass a chat template file."
        ) from exc
    except (UnicodeDecodeError, jinja2.TemplateSyntaxError) as exc:
        raise ModelSpecError(
            f"template {path} is not a Jinja template: {exc}.", hint="Pass a chat template file."
        ) from exc
    return text


def _copy(reader: GGUFReader, dest: Path, template: str) -> None:
    import gguf
    from gguf.scripts import gguf_new_metadata
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata
    from tqdm import tqdm

    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(dest, arch=arch, endianess=reader.endianess)
    alignment = reader.fields.get(gguf.Keys.General.ALIGNMENT)
    if alignment is not None:
        writer.data_alignment = alignment.contents()
    new = {TEMPLATE_KEY: MetadataDetails(gguf.GGUFValueType.STRING, template)}
    # The script draws a progress bar on stderr, through a run's own progress display: off.
    with patch.object(gguf_new_metadata, "tqdm", functools.partial(tqdm, disable=True)):
        copy_with_new_metadata(reader, writer, new, [])
