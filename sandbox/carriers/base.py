"""What a carrier produces, and the registry keyed by the name used in YAML."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sandbox.carriers.transforms import apply_transforms
from sandbox.errors import CarrierError, ScenarioError
from sandbox.scenarios.loader import ScenarioFile
from sandbox.scenarios.models import PAYLOAD_MARK, Input, Payload, Scenario


@dataclass(frozen=True)
class Artifact:
    """One built input: the bytes a clinical system would hand to the integration."""

    name: str
    media_type: str
    kind: str
    data: bytes
    has_payload: bool


CarrierBuilder = Callable[[Scenario, Input], Artifact]
CARRIERS: dict[str, CarrierBuilder] = {}


def register(name: str) -> Callable[[CarrierBuilder], CarrierBuilder]:
    """Register a carrier under the name scenario files use."""

    def add(builder: CarrierBuilder) -> CarrierBuilder:
        CARRIERS[name] = builder
        return builder

    return add


def planted_text(scenario: Scenario, payload: Payload) -> str:
    """The payload as the carrier plants it: canary substituted, transforms applied."""
    return apply_transforms(scenario.payload_text(payload), payload, scenario.canary_token)


def fill_payload(content: str, planted: str, separator: str) -> str:
    """Put `planted` at the `{payload}` mark, or after the content; empty `planted` drops it.

    Line endings become newlines and the result is stripped.
    """
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    if PAYLOAD_MARK in content:
        text = content.replace(PAYLOAD_MARK, planted)
    elif planted:
        text = f"{content.rstrip()}{separator}{planted}" if content.strip() else planted
    else:
        text = content
    return text.strip()


def build_artifacts(scenario: Scenario) -> list[Artifact]:
    """Build every input of a scenario (attacked or clean twin) with its carrier."""
    return [CARRIERS[item.carrier](scenario, item) for item in scenario.inputs]


def check_buildable(file: ScenarioFile) -> ScenarioError | None:
    """Build both variants once, so a payload that does not fit is found before any model runs."""
    for scenario in (file.scenario, file.scenario.clean_twin()):
        try:
            build_artifacts(scenario)
        except CarrierError as exc:
            return ScenarioError(f"{file.path}: {exc.message}", hint=exc.hint)
    return None
