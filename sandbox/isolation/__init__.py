"""Sandboxes for model servers: the egress sink, the network rules, the isolation backends.

Importing this package starts nothing and imports no optional dependency.
"""

from sandbox.isolation.select import (
    Isolation,
    IsolationName,
    NamespaceIsolation,
    NoIsolation,
    choose_isolation,
)

__all__ = ["Isolation", "IsolationName", "NamespaceIsolation", "NoIsolation", "choose_isolation"]
