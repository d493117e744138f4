"""What a carrier is and produces, and the registry keyed by the name used in YAML."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sandbox.carriers.transforms import apply_transforms
from sandbox.errors import CarrierError, ScenarioError
from sandbox.registry import Registry
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


@dataclass(frozen=True)
class Location:
    """One place a carrier plants a payload: the input's kind, `payload.field`, `.technique`."""

    kind: str
    field: str | None = None
    technique: str | None = None
    pixels: bool = False  # drawn into the image: no text of the file carries it

    def describe(self) -> str:
        """'image: field=pixels, technique=tiny', as a scenario author would write it."""
        parts = [f"{k}={v}" for k, v in (("field", self.field), ("technique", self.technique)) if v]
        return f"{self.kind}: {', '.join(parts) or 'default'}"


@dataclass(frozen=True)
class Carrier:
    """A registered carrier: its builder and the payload locations it supports.

    `locations` are the places the carrier can plant a payload (for DICOM a sample of the text
    attributes it accepts); `sandbox carriers list` shows them and the carrier contract test
    builds each one and finds the canary there, and not in the clean twin.
    """

    name: str
    build: CarrierBuilder
    locations: tuple[Location, ...]
    summary: str


CARRIERS: Registry[Carrier] = Registry("carrier")


def register(
    name: str, locations: tuple[Location, ...], summary: str
) -> Callable[[CarrierBuilder], CarrierBuilder]:
    """Register a carrier under the name scenario files use, with the locations it supports."""

    def add(builder: CarrierBuilder) -> CarrierBuilder:
        CARRIERS.add(Carrier(name, builder, locations, summary))
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
    return [CARRIERS[item.carrier].build(scenario, item) for item in scenario.inputs]


def check_buildable(file: ScenarioFile) -> ScenarioError | None:
    """Build both variants once, so a payload that does not fit is found before any model runs."""
    for scenario in (file.scenario, file.scenario.clean_twin()):
        try:
            build_artifacts(scenario)
        except CarrierError as exc:
            return ScenarioError(f"{file.path}: {exc.message}", hint=exc.hint)
    return None
