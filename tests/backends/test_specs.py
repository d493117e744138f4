"""Model spec parsing: every form users type, and a clear error for every wrong one."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.backends import EmbeddedSpec, GgufSpec, OpenAISpec, parse_model_spec, with_template
from sandbox.backends.specs import base_label
from sandbox.errors import ModelSpecError


def test_embedded_alone_is_the_gemma_alias_and_names_pick_a_model() -> None:
    assert parse_model_spec("embedded") == EmbeddedSpec(name="gemma3-270m")
    assert parse_model_spec("embedded").label() == "embedded:gemma3-270m"
    spec = parse_model_spec("embedded:smollm2-135m")
    assert spec == EmbeddedSpec(name="smollm2-135m")
    assert spec.label() == "embedded:smollm2-135m"


@pytest.mark.parametrize("text", ["embedded:gpt-4", "embedded:SMOLLM2-135M"])
def test_an_unknown_embedded_name_lists_the_embedded_models(text: str) -> None:
    with pytest.raises(ModelSpecError) as caught:
        parse_model_spec(text)
    assert "embedded:gemma3-270m, embedded:smollm2-135m" in caught.value.hint


def test_parse_model_spec_gguf_resolves_the_path(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 16)
    spec = parse_model_spec(f"gguf:{model}")
    assert spec == GgufSpec(path=model.resolve())
    assert spec.label() == f"gguf:{model.resolve()}"


def test_parse_model_spec_gguf_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError, match="no such file"):
        parse_model_spec(f"gguf:{tmp_path / 'absent.gguf'}")


def test_parse_model_spec_gguf_rejects_a_file_without_gguf_magic(tmp_path: Path) -> None:
    model = tmp_path / "m.bin"
    model.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ModelSpecError, match="not a GGUF file"):
        parse_model_spec(f"gguf:{model}")


def test_parse_model_spec_openai_splits_url_and_model() -> None:
    spec = parse_model_spec("openai:http://127.0.0.1:8000/v1/#qwen2.5-7b")
    assert spec == OpenAISpec(url="http://127.0.0.1:8000/v1", model="qwen2.5-7b")


@pytest.mark.parametrize(
    "text", ["openai:http://127.0.0.1:8000/v1", "openai:127.0.0.1#m", "openai:ftp://h/v1#m"]
)
def test_parse_model_spec_openai_needs_http_url_and_model(text: str) -> None:
    with pytest.raises(ModelSpecError) as caught:
        parse_model_spec(text)
    assert "openai:http://HOST:PORT/v1#MODEL" in caught.value.hint


@pytest.mark.parametrize("text", ["", "gemma", "gguf:", "embedded:", "hf:google/gemma", "embeded"])
def test_parse_model_spec_unknown_forms_list_the_valid_ones(text: str) -> None:
    with pytest.raises(ModelSpecError) as caught:
        parse_model_spec(text)
    assert "embedded:NAME, gguf:PATH, vllm:PATH, openai:URL#MODEL" in caught.value.hint


# ---- +template= -----------------------------------------------------------------------------


def test_template_reference_and_a_file_ride_on_gguf_and_embedded_specs(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 16)
    template = tmp_path / "t.jinja"
    template.write_text("{{ messages[0].content }}")

    spec = parse_model_spec(f"gguf:{model}+template=reference")
    assert spec == GgufSpec(path=model.resolve(), template="reference")
    assert spec.label() == f"gguf:{model.resolve()}+template=reference"
    assert base_label(spec.label()) == f"gguf:{model.resolve()}"

    spec = parse_model_spec(f"embedded:smollm2-135m+template={template}")
    assert spec == EmbeddedSpec(name="smollm2-135m", template=str(template.resolve()))
    assert base_label(spec.label()) == "embedded:smollm2-135m"
    assert parse_model_spec(spec.label()) == spec  # a stored label parses back to its spec


def test_with_template_adds_an_arm_and_leaves_the_spec_alone() -> None:
    plain = parse_model_spec("embedded:smollm2-135m")

    arm = with_template(plain, "reference")

    assert plain.template == "" and arm.template == "reference"
    assert base_label(arm.label()) == plain.label() == base_label(plain.label())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("openai:http://127.0.0.1:8000/v1#m+template=reference", "only GGUF models"),
        ("embedded+template=/nonexistent/t.jinja", "no such file"),
        ("embedded+template=", "no such file"),
        ("embedded+template=reference+template=reference", "no such file"),
    ],
)
def test_a_wrong_template_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message):
        parse_model_spec(text)


def test_a_template_arm_cannot_take_a_second_template() -> None:
    arm = parse_model_spec("embedded+template=reference")

    with pytest.raises(ModelSpecError, match="already names a template"):
        with_template(arm, "reference")
