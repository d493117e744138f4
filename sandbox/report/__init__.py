"""Reports: metrics with confidence intervals (tables, HTML, JSON and JUnit come later)."""

from sandbox.report.metrics import ModelMetrics, Rate, summarise, wilson

__all__ = ["ModelMetrics", "Rate", "summarise", "wilson"]
