"""Pickled weights scanned with fickling: raw pickles and the pickles inside PyTorch zip files.

fickling (Trail of Bits) decompiles the opcodes without running them. Its default analyses call
every non-standard import unsafe, which flags every PyTorch checkpoint; its ML allow-list
(`fickling.ml.MLAllowlist`, the imports a state dict needs) replaces those two analyses here, and
the rest (unsafe imports such as `os.system`, bad calls, unused results...) stay. modelscan was
the other candidate: it matches a deny-list of known-bad globals, so an unlisted gadget passes,
and it brings more dependencies.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sandbox.audit.findings import Finding, Severity, shorten

PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"}
MAX_PICKLE = 256 << 20  # a state-dict pickle is small: the tensors live beside it
REPLACED = {"NonStandardImports", "OvertlyBadEvals", "UnusedVariables"}


def scan_pickle_file(path: Path, name: str) -> list[Finding]:
    """Findings for one weights file: unsafe content, else a note that it is a pickle."""
    pickles = list(_pickles_in(path))
    if not pickles:
        return []
    findings = [f for member, data in pickles for f in scan_pickle(data, f"{name}:{member}")]
    if findings:
        return findings
    return [
        Finding(
            rule="pickle-present",
            severity=Severity.LOW,
            message="weights load with pickle (fickling found nothing unsafe)",
            location=name,
        )
    ]


def _pickles_in(path: Path) -> Iterator[tuple[str, bytes]]:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".pkl") and info.file_size <= MAX_PICKLE:
                    yield info.filename, archive.read(info)
        return
    with path.open("rb") as handle:
        head = handle.read(MAX_PICKLE)
    if head[:1] == b"\x80":  # a pickle protocol marker (2 and later)
        yield "", head


def scan_pickle(data: bytes, location: str) -> list[Finding]:
    """Fickling's verdict on one pickle, as findings."""
    from fickling.analysis import Analysis, Analyzer
    from fickling.analysis import Severity as Fickle
    from fickling.fickle import Pickled
    from fickling.ml import MLAllowlist

    pickled = Pickled.load(data, fail_on_decode_error=False)
    analyses = [a for a in Analysis.ALL if type(a).__name__ not in REPLACED]
    results = Analyzer([*analyses, MLAllowlist()]).analyze(pickled).results
    # fickling's Severity is not hashable: its names map onto ours.
    levels = {
        "POSSIBLY_UNSAFE": Severity.LOW,
        "SUSPICIOUS": Severity.MEDIUM,
        "LIKELY_UNSAFE": Severity.HIGH,
    }
    findings = [
        _finding(r, levels.get(r.severity.name, Severity.CRITICAL), location)
        for r in results
        if r.severity != Fickle.LIKELY_SAFE
    ]
    if pickled.has_invalid_opcode:
        findings.append(
            Finding(
                rule="pickle-unsafe",
                severity=Severity.HIGH,
                message="the pickle has invalid opcodes",
                location=location,
            )
        )
    return findings


def _finding(result: Any, severity: Severity, location: str) -> Finding:
    return Finding(
        rule="pickle-unsafe",
        severity=severity,
        message=str(result),
        location=location,
        evidence=shorten(str(result.trigger or "")),
    )
