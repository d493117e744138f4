"""Model files: SHA-256 with a cache (large GGUFs are hashed once)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sandbox.paths import cache_dir


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
