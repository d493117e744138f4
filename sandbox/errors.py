"""The one exception tree of the project; every failure a user can fix derives from it.

    SandboxError                 message + hint (what failed, then what to do)
    ├── ScenarioError            a scenario file is wrong (names file, line and field)
    │   └── CarrierError         a carrier cannot build its artifact from the scenario
    ├── ModelSpecError           a --model value cannot be understood, or its model not used
    ├── BackendError             talking to a model server failed
    │   └── ServerStartError     the server did not become healthy (carries its log tail)
    ├── SandboxStartError        a sandbox (its egress sink) could not be set up
    ├── ExecError                the command given to `sandbox exec` cannot be run
    ├── ModelChangedError        the model file's hash after a run is not the one evaluated
    ├── TrialTimeoutError        one trial ran past its time limit
    ├── StoreError               the results database cannot be opened or used
    ├── TranscriptError          an output given to `sandbox score` cannot be read
    ├── ThresholdError           a --fail-on expression cannot be understood
    ├── ReportFileError          a report file cannot be written
    └── MissingDependencyError   an optional dependency (extra) is not installed

A model that obeys a payload is a verdict, never an exception. `SandboxError` itself is never
raised: each failure has its class (`tests/test_error_tree.py` keeps this drawing true).
"""

from __future__ import annotations


class SandboxError(Exception):
    """A failure the user can fix: `message` says what failed, `hint` what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class TranscriptError(SandboxError):
    """A model output given to `sandbox score` cannot be read as text or a JSON transcript."""


class ThresholdError(SandboxError):
    """A `--fail-on` expression cannot be understood."""


class ReportFileError(SandboxError):
    """A report file cannot be written."""


class ScenarioError(SandboxError):
    """A scenario file is invalid; the message starts with `file:line`."""


class CarrierError(ScenarioError):
    """A carrier cannot build its artifact (payload too long, unknown field or technique)."""


class ModelSpecError(SandboxError):
    """A model spec (`embedded`, `gguf:PATH`, `openai:URL#MODEL`) is malformed or unusable."""


class BackendError(SandboxError):
    """Talking to a model server failed."""


class ServerStartError(BackendError):
    """The model server exited or did not answer its health check in time."""


class SandboxStartError(SandboxError):
    """A sandbox could not be created, or its egress sink never became ready."""


class ExecError(SandboxError):
    """The command given to `sandbox exec` is missing or cannot be started."""


class ModelChangedError(SandboxError):
    """The model file (or folder) changed while it was being evaluated."""


class TrialTimeoutError(SandboxError):
    """A trial did not finish within its time limit."""


class StoreError(SandboxError):
    """The results database cannot be opened, migrated or written."""


class MissingDependencyError(SandboxError):
    """An optional dependency is missing; the hint names the extra that provides it."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"The Python module '{module}' is not installed.",
            hint=f"Install the extra: pip install 'sandbox-eval[{extra}]' (or run `make setup`).",
        )
