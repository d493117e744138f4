"""Writing report files for `sandbox run --html` and `sandbox report`."""

from __future__ import annotations

from pathlib import Path

from sandbox.errors import ReportFileError


def write_report_file(path: Path, text: str) -> None:
    """Write a report file, creating its folder; ReportFileError when that is not possible."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReportFileError(
            f"cannot write the report file {path}: {exc.strerror or exc}.",
            hint="Choose a path in a folder you can write to.",
        ) from None
