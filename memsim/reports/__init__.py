"""Figures and report bundles from ``Result`` objects (matplotlib, Agg, no pyplot state).

Figures: :func:`roofline_figure` (hierarchical roofline), :func:`bytes_per_level_figure`,
:func:`timeline_figure` (Gantt of the event trace), :func:`traffic_vs_sram_figure` (closed-form
traffic vs SRAM size with the lower bound), :func:`predicted_vs_measured_figure`. Bundles:
:func:`write_report` (PNG/SVG, self-contained HTML, Markdown).
"""
from ._common import describe_run, new_figure, save_figure
from .bundle import ReportBundle, provenance, write_report
from .figures import bytes_per_level_figure, roofline_data, roofline_figure
from .io import load_result_json, result_from_dict
from .sram import SramSweep, sram_sweep, traffic_vs_sram_figure
from .timeline import busy_intervals, timeline_figure
from .validation import (ValidationPoint, as_points, error_summary, points_from_case_results,
                         predicted_vs_measured_figure, read_points_csv)

__all__ = [
    "describe_run", "new_figure", "save_figure",
    "ReportBundle", "provenance", "write_report",
    "bytes_per_level_figure", "roofline_data", "roofline_figure",
    "load_result_json", "result_from_dict",
    "SramSweep", "sram_sweep", "traffic_vs_sram_figure",
    "busy_intervals", "timeline_figure",
    "ValidationPoint", "as_points", "error_summary", "points_from_case_results",
    "predicted_vs_measured_figure",
    "read_points_csv",
]
