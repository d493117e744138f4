"""The results store: sqlmodel tables and `open_store(url)` (SQLite default, Postgres for teams)."""

from sandbox.store.handle import RunHandle
from sandbox.store.store import (
    EgressSummary,
    RunConfig,
    Store,
    TrialSummary,
    VerdictSummary,
    open_store,
)

__all__ = [
    "EgressSummary",
    "RunConfig",
    "RunHandle",
    "Store",
    "TrialSummary",
    "VerdictSummary",
    "open_store",
]
