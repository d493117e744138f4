"""The scorecard fits a 100-column terminal without breaking a number; --wide keeps one line."""

from __future__ import annotations

import re

from rich.console import Console

from sandbox.cli.render import comparison_table, report_breakdown_table, report_models_table
from sandbox.report.collect import compare
from sandbox.report.model import Report
from tests.report.reports import figures, model, rate, report

FAMILIES = [
    "backdoor-trigger",
    "document-injection",
    "misleading-context",
    "training-data-extraction",
    "resource-exhaustion",
]
NUMBER = re.compile(r"\d+%(?: \d+/\d+)?|\d+%–\d+%|\d+/\d+")


def _report() -> Report:
    def rich_figures(k: int) -> object:
        return figures(
            trials=100,
            errors=3,
            skipped=2,
            attack_success=rate(k, 47),
            adjusted_attack_success=-0.33,
            clean_failure=rate(10, 47),
            utility_clean=rate(47 - k, 47),
            utility_attacked=rate(100 - 2 * k if k < 50 else 1, 100),
            canary_leak=rate(k // 2, 40),
            refusal=rate(3, 47),
            over_refusal=rate(12, 47),
            egress_trials=rate(1, 94),
            egress_events=1234,
        )

    models = [
        model(
            label,
            position=i,
            overall=rich_figures(10 + i),  # type: ignore[arg-type]
            by_family={f: rich_figures(20 + j) for j, f in enumerate(FAMILIES)},  # type: ignore[misc]
            by_carrier={"dicom": rich_figures(30), "pdf": rich_figures(5)},  # type: ignore[dict-item]
            startup_egress=17,
        )
        for i, label in enumerate(["embedded:smollm2-135m", "embedded:gemma3-270m"])
    ]
    built = report(models)
    return built.model_copy(update={"comparisons": compare(models)})


def _render(table: object, width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(table)
    return console.export_text().splitlines()


def _tables(built: Report, wide: bool) -> list[object]:
    return [
        report_models_table(built, wide),
        report_breakdown_table(built, "family", wide),
        report_breakdown_table(built, "carrier", wide),
        comparison_table(built.comparisons[0], wide),
    ]


def test_every_table_fits_100_columns_and_no_number_is_broken() -> None:
    built = _report()
    for table in _tables(built, wide=False):
        lines = _render(table, 100)
        assert max(map(len, lines)) <= 100
        wide_lines = _render(table, 400)  # the same cells with all the room they want
        numbers = {n for line in wide_lines for n in NUMBER.findall(line)}
        narrow_numbers = {n for line in lines for n in NUMBER.findall(line)}
        assert numbers <= narrow_numbers, numbers - narrow_numbers


def test_model_labels_and_families_are_whole_in_100_columns() -> None:
    text = "\n".join(_render(report_breakdown_table(_report(), "family"), 100))
    for family in FAMILIES:
        assert family in text
    scorecard = "\n".join(_render(report_models_table(_report()), 100))
    assert "embedded:smollm2-135m" in text and "embedded:smollm2-135m" in scorecard


def test_wide_tables_keep_each_rate_on_one_line() -> None:
    lines = _render(report_models_table(_report(), wide=True), 400)
    assert any("26% [15%–40%] 12/47" in line for line in lines)
    assert any("Attack success" in line for line in lines)
