"""Reports: metrics with confidence intervals (tables, HTML, JSON and JUnit come later)."""

from sandbox.report.metrics import Figures, ModelMetrics, Rate, figures, summarise, wilson

__all__ = ["Figures", "ModelMetrics", "Rate", "figures", "summarise", "wilson"]
