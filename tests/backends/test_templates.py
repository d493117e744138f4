"""`--template`: a GGUF copied with its family's reference or another template, built once."""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest

from sandbox.backends.templates import REFERENCE, REFERENCES
from sandbox.backends.templates.hostile import HOSTILE
from sandbox.backends.templates.repackage import TEMPLATE_KEY, templated
from sandbox.errors import ModelSpecError
from sandbox.paths import cache_dir
from tests.audit.ggufs import write_gguf


def template_of(path: Path) -> str:
    return str(gguf.GGUFReader(path).fields[TEMPLATE_KEY].contents())


def tensors_of(path: Path) -> list[tuple[str, bytes]]:
    return [(t.name, t.data.tobytes()) for t in gguf.GGUFReader(path).tensors]


def test_reference_replaces_the_template_and_keeps_the_weights(tmp_path: Path) -> None:
    source = write_gguf(tmp_path / "link.gguf", HOSTILE["link"])

    copy = templated(source, REFERENCE)

    assert template_of(copy) == REFERENCES[0].text
    assert tensors_of(copy) == tensors_of(source)
    assert copy.parent == cache_dir() / "templated"
    assert template_of(source) == HOSTILE["link"]  # the file under test is never touched


def test_a_template_file_is_served_as_written(tmp_path: Path) -> None:
    source = write_gguf(tmp_path / "m.gguf", REFERENCES[0].text)
    own = tmp_path / "mine.jinja"
    own.write_text(HOSTILE["trigger"])

    assert template_of(templated(source, str(own))) == HOSTILE["trigger"]


def test_the_copy_is_built_once_and_keyed_by_file_and_template(tmp_path: Path) -> None:
    source = write_gguf(tmp_path / "m.gguf", HOSTILE["link"])
    first = templated(source, REFERENCE)
    stamp = first.stat().st_mtime_ns

    assert templated(source, REFERENCE) == first
    assert first.stat().st_mtime_ns == stamp
    other = tmp_path / "other.jinja"
    other.write_text(HOSTILE["escape"])
    assert templated(source, str(other)) != first
    changed = write_gguf(tmp_path / "m2.gguf", HOSTILE["trigger"])
    assert templated(changed, REFERENCE) != first
    assert not list((cache_dir() / "templated").glob("*.tmp"))


def test_a_family_without_a_reference_names_the_known_ones(tmp_path: Path) -> None:
    source = write_gguf(tmp_path / "m.gguf", HOSTILE["link"], basename="mystery")

    with pytest.raises(ModelSpecError, match="no reference chat template") as caught:
        templated(source, REFERENCE)

    assert "llama/smollm2" in caught.value.hint and "--template PATH" in caught.value.hint
    assert not list(cache_dir().glob("templated/*"))


@pytest.mark.parametrize(
    "content", [b"{% for m in messages %}{{ m.content }}", b"\xff\xfe not text"]
)
def test_a_template_file_that_is_not_jinja_is_refused(tmp_path: Path, content: bytes) -> None:
    source = write_gguf(tmp_path / "m.gguf", HOSTILE["link"])
    bad = tmp_path / "bad.jinja"
    bad.write_bytes(content)

    with pytest.raises(ModelSpecError, match="is not a Jinja template"):
        templated(source, str(bad))
