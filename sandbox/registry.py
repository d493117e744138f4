"""The one plugin shape: a name users type mapped to a plugin that declares what it is.

Carriers, workflows, checks, tools, model backends and sandboxes each keep one `Registry`.
A plugin is a frozen dataclass with a `name`; registering a second plugin under a name already
taken is a programming error raised at import, so two modules can never silently shadow one
another. `tests/test_plugins.py` runs each kind's contract over every registered plugin.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

# The package whose modules hold each kind's plugins: `known` imports it before answering, so a
# scenario names a check that exists whether or not anything imported the checks yet.
PACKAGES = {
    "carrier": "sandbox.carriers",
    "workflow": "sandbox.workflows",
    "check": "sandbox.detectors",
    "tool": "sandbox.tools",
}


class Plugin(Protocol):
    """What every plugin has: the name scenario files and options use."""

    @property
    def name(self) -> str:
        """The registry key."""
        ...


P = TypeVar("P", bound=Plugin)


class DuplicatePluginError(ValueError):
    """Two plugins of one kind were registered under the same name (a bug, not a user error)."""


class Registry(Generic[P]):
    """Plugins of one kind by name, in registration order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._plugins: dict[str, P] = {}
        _REGISTRIES[kind] = self

    def add(self, plugin: P) -> P:
        """Register `plugin`; a name already taken raises DuplicatePluginError."""
        if plugin.name in self._plugins:
            raise DuplicatePluginError(f"a {self.kind} named {plugin.name!r} is already registered")
        self._plugins[plugin.name] = plugin
        return plugin

    def __getitem__(self, name: str) -> P:
        """The plugin called `name`; KeyError names the known ones."""
        try:
            return self._plugins[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r} (known: {', '.join(self)})") from None

    def get(self, name: str) -> P | None:
        """The plugin called `name`, or None."""
        return self._plugins.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._plugins

    def __iter__(self) -> Iterator[str]:
        return iter(self._plugins)

    def __len__(self) -> int:
        return len(self._plugins)

    def plugins(self) -> list[P]:
        """Every registered plugin, in registration order."""
        return list(self._plugins.values())


_REGISTRIES: dict[str, Registry[Any]] = {}


def known(kind: str) -> list[str]:
    """The names registered for `kind` ('carrier', 'workflow', 'check', 'tool'), sorted."""
    importlib.import_module(PACKAGES[kind])
    return sorted(_REGISTRIES[kind])


def discover(package: str, path: Iterable[str]) -> None:
    """Import every module of a plugin package, so that a new module registers by existing.

    A package's `__init__` calls `discover(__name__, __path__)`; modules whose name starts
    with `_` are skipped.
    """
    for module in pkgutil.iter_modules(path):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package}.{module.name}")
