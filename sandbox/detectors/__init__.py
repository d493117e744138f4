"""Checks: pure functions from what a trial produced to a verdict with its evidence.

Every module of this package is imported here, so a new check registers by existing.
"""

from sandbox.detectors.base import (
    CHECKS,
    Check,
    CheckSpec,
    Observation,
    Verdict,
    register,
    run_checks,
)
from sandbox.registry import discover

discover(__name__, __path__)

__all__ = ["CHECKS", "Check", "CheckSpec", "Observation", "Verdict", "register", "run_checks"]
