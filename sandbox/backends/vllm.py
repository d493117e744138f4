"""vLLM on a GPU host: the server command for a Hugging Face model folder (docker sandbox).

The offline variables are set unless start-up egress is to be observed (`--allow-startup-egress`,
or a scenario about it): then vLLM's own defaults (usage statistics, hub look-ups) stay on, and
the sink records what it tries.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sandbox.backends.files import sha256_file
from sandbox.backends.server import ServerCommand

VLLM_VERSION = "v0.11.0"
VLLM_IMAGE = f"localhost/sandbox-vllm:{VLLM_VERSION}"
OFFLINE = {
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
START_TIMEOUT_S = 900.0  # large models load for minutes


def folder_manifest_sha256(folder: Path) -> str:
    """One hash for a model folder: SHA-256 over each file's relative path and SHA-256."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder)}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def model_inputs(folder: Path) -> tuple[str, ...]:
    """("text", "image") for a vision-language model (its config has a vision part)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return ("text",)
    return ("text", "image") if "vision_config" in config else ("text",)


def vllm_command(folder: Path, seed: int, allow_startup_egress: bool) -> ServerCommand:
    """`vllm serve` on a Unix socket, GPUs requested, offline unless egress is to be observed."""
    env = {k: "0" for k in OFFLINE} if allow_startup_egress else dict(OFFLINE)
    return ServerCommand(
        argv=[
            "vllm",
            "serve",
            "@model@",
            "--uds",
            "@socket@",
            "--served-model-name",
            "model",
            "--seed",
            str(seed),
            "--disable-log-requests",
        ],
        env={**env, "HOME": "/tmp", "XDG_CACHE_HOME": "/tmp/.cache"},
        model=folder,
        image=VLLM_IMAGE,
        gpus=True,
        start_timeout=START_TIMEOUT_S,
    )
