"""Which audit a target gets (a GGUF file, a model folder, a model spec) and its cache."""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

from sandbox.audit.findings import Audit
from sandbox.audit.folder import audit_folder
from sandbox.audit.gguf_file import audit_gguf
from sandbox.backends import templates
from sandbox.backends.embedded import embedded_model
from sandbox.backends.files import sha256_file
from sandbox.backends.kinds import BACKENDS, parse_model_spec
from sandbox.backends.specs import EmbeddedSpec, OpenAISpec
from sandbox.backends.vllm import folder_manifest_sha256
from sandbox.errors import ModelSpecError
from sandbox.paths import cache_dir

HERE = Path(__file__).parent
TEMPLATES = Path(templates.__file__).parent  # the references the audit compares against


def audit_model(target: str) -> Audit:
    """Audit a model spec as `sandbox run --model` takes it, or a GGUF file or folder path."""
    if target != "embedded" and target.partition(":")[0] not in BACKENDS:
        return audit_path(Path(target))
    spec = parse_model_spec(target)
    if isinstance(spec, EmbeddedSpec):
        return audit_path(embedded_model(spec.name).ensure())
    if isinstance(spec, OpenAISpec):
        raise ModelSpecError(
            f"{target} is an endpoint: its files are not here to audit.",
            hint="Audit the GGUF or folder the endpoint serves.",
        )
    return audit_path(spec.path)


def audit_path(path: Path) -> Audit:
    """Audit a GGUF file or a model folder, from the cache when this version saw it before."""
    if path.is_dir():
        return audit_folder(path, folder_manifest_sha256(path))
    if not path.is_file():
        raise ModelSpecError(f"{path} does not exist.", hint="Give a GGUF file or a model folder.")
    digest = sha256_file(path)
    cached = cache_dir() / "audits" / f"{digest}-{audit_version()[:16]}.json"
    try:
        return Audit.model_validate_json(cached.read_text()).model_copy(
            update={"target": str(path)}
        )
    except (OSError, ValueError):  # not audited yet, or a record cut short: audit again
        pass
    audit = audit_gguf(path, digest)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(audit.model_dump_json())
    partial.replace(cached)  # whole or absent, when two processes audit the same file at once
    return audit


@cache
def audit_version() -> str:
    """SHA-256 of this package's code and the reference templates: a new rule voids the cache."""
    digest = hashlib.sha256()
    for path in sorted(HERE.rglob("*")) + sorted(TEMPLATES.rglob("*")):
        if path.suffix in (".py", ".jinja"):
            digest.update(path.read_bytes())
    return digest.hexdigest()
