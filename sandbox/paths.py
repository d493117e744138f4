"""Where the project keeps data: the cache (models, wheels) and the results folder.

Every location can be moved with a `SANDBOX_*` environment variable; tests point them at tmp.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder: assembled models and hashes (`SANDBOX_CACHE_DIR`)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sandbox-eval"
    return Path(os.environ.get("SANDBOX_CACHE_DIR", default))


def results_dir() -> Path:
    """The results folder: database, server logs and reports (`SANDBOX_RESULTS_DIR`)."""
    return Path(os.environ.get("SANDBOX_RESULTS_DIR", "results"))


def models_dir() -> Path:
    """A folder scanned for GGUF files by `sandbox models` (`SANDBOX_MODELS_DIR`)."""
    return Path(os.environ.get("SANDBOX_MODELS_DIR", "models"))


def default_db_url() -> str:
    """SQLite database inside the results folder."""
    return f"sqlite:///{results_dir() / 'sandbox.db'}"
