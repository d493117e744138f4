"""Carriers: pure builders from a scenario's case and payload to the bytes of a clinical file.

Every module of this package is imported here, so a new carrier registers by existing.
"""

from sandbox.carriers.base import (
    CARRIERS,
    Artifact,
    Carrier,
    Location,
    build_artifacts,
    check_buildable,
    register,
)
from sandbox.registry import discover

discover(__name__, __path__)

__all__ = [
    "CARRIERS",
    "Artifact",
    "Carrier",
    "Location",
    "build_artifacts",
    "check_buildable",
    "register",
]
