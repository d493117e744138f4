"""Audit of a Hugging Face model folder (what vLLM serves).

Pickles, remote code, safetensors headers, and the chat templates and added tokens of its
tokenizer files.

Pickles are scanned statically by Trail of Bits' fickling (it never unpickles), against its
allow-list of ML imports; see `pickles.py`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from sandbox.audit.findings import Audit, Finding, Severity
from sandbox.audit.pickles import PICKLE_SUFFIXES, scan_pickle_file
from sandbox.audit.template import scan_template
from sandbox.audit.tokens import added_token_findings

MAX_HEADER = 100 << 20  # safetensors' own limit on the JSON header
DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
MAX_JSON = 64 << 20


def audit_folder(folder: Path, sha256: str = "") -> Audit:
    """Findings for one model folder."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    findings: list[Finding] = []
    for path in files:
        name = str(path.relative_to(folder))
        if path.suffix in PICKLE_SUFFIXES:
            findings += scan_pickle_file(path, name)
        elif path.suffix == ".safetensors":
            findings += safetensors_findings(path, name)
        elif path.suffix == ".py":
            findings.append(
                Finding(
                    rule="remote-code",
                    severity=Severity.HIGH,
                    message="Python code ships with the model",
                    location=name,
                )
            )
        elif path.name == "chat_template.jinja":
            findings += scan_template(path.read_text(errors="replace"), name)
    facts: dict[str, str] = {}
    for config_name in ("config.json", "tokenizer_config.json", "chat_template.json"):
        config = read_json(folder / config_name)
        findings += config_findings(config, config_name, facts)
    added = added_tokens(read_json(folder / "tokenizer.json"))
    findings += added_token_findings(added, "tokenizer.json added_tokens")
    return Audit(
        target=str(folder), kind="folder", sha256=sha256, facts=facts, findings=tuple(findings)
    )


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from the folder; {} when absent, too large or not an object."""
    if not path.is_file() or path.stat().st_size > MAX_JSON:
        return {}
    try:
        data = json.loads(path.read_text(errors="replace"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def config_findings(config: dict[str, Any], name: str, facts: dict[str, str]) -> list[Finding]:
    """Remote code declared in a config, and the chat templates a tokenizer config carries."""
    findings = []
    if "auto_map" in config:
        findings.append(
            Finding(
                rule="remote-code",
                severity=Severity.HIGH,
                message="`auto_map` names classes loaded from Python files",
                location=name,
                evidence=json.dumps(config["auto_map"])[:160],
            )
        )
    if isinstance(config.get("model_type"), str):
        facts["architecture"] = config["model_type"]
    templates = config.get("chat_template")
    if isinstance(templates, str):
        findings += scan_template(templates, f"{name} chat_template")
    elif isinstance(templates, list):
        for entry in templates:
            if isinstance(entry, dict) and isinstance(entry.get("template"), str):
                where = f"{name} chat_template[{entry.get('name', '?')}]"
                findings += scan_template(entry["template"], where)
    decoder = config.get("added_tokens_decoder")
    if isinstance(decoder, dict):
        added = {
            int(k): t["content"]
            for k, t in decoder.items()
            if k.isdigit() and isinstance(t, dict) and isinstance(t.get("content"), str)
        }
        findings += added_token_findings(added, f"{name} added_tokens_decoder")
    return findings


def added_tokens(tokenizer: dict[str, Any]) -> dict[int, str]:
    """The added tokens of a tokenizer.json, by id."""
    entries = tokenizer.get("added_tokens")
    if not isinstance(entries, list):
        return {}
    return {
        e["id"]: e["content"]
        for e in entries
        if isinstance(e, dict)
        and isinstance(e.get("id"), int)
        and isinstance(e.get("content"), str)
    }


def safetensors_findings(path: Path, name: str) -> list[Finding]:
    """The header's length, JSON, dtypes, shapes and offsets checked against the file."""
    problem = safetensors_problem(path)
    if problem is None:
        return []
    return [
        Finding(rule="safetensors-header", severity=Severity.HIGH, message=problem, location=name)
    ]


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with a safetensors header, None when nothing is."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return "the file is shorter than its 8-byte header length"
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER, size - 8):
            return f"the header claims {length} bytes; the file has {size - 8} after the length"
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            return "the header is not JSON"
    if not isinstance(header, dict):
        return "the header is not a JSON object"
    return _tensor_problem(header, size - 8 - length)


def _tensor_problem(header: dict[str, Any], data_size: int) -> str | None:
    spans = []
    for tensor, entry in header.items():
        if tensor == "__metadata__":
            continue
        if not isinstance(entry, dict) or entry.get("dtype") not in DTYPE_BYTES:
            return f"tensor {tensor!r} has no known dtype"
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            return f"tensor {tensor!r} has a malformed shape"
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
        ):
            return f"tensor {tensor!r} has malformed offsets"
        begin, end = offsets
        expected = DTYPE_BYTES[entry["dtype"]]
        for dim in shape:
            expected *= dim
        if not 0 <= begin <= end <= data_size or end - begin != expected:
            return f"tensor {tensor!r} spans {begin}..{end}, not {expected} bytes inside the data"
        spans.append((begin, end))
    spans.sort()
    for (_, end), (begin, _) in zip(spans, spans[1:], strict=False):
        if begin < end:
            return "two tensors overlap"
    return None
