"""Carriers: pure builders from a scenario's case and payload to the bytes of a clinical file."""

from sandbox.carriers import dicom, fhir, hl7, image, pdf, text
from sandbox.carriers.base import CARRIERS, Artifact, build_artifacts, check_buildable, register

__all__ = [
    "CARRIERS",
    "Artifact",
    "build_artifacts",
    "check_buildable",
    "dicom",
    "fhir",
    "hl7",
    "image",
    "pdf",
    "register",
    "text",
]
