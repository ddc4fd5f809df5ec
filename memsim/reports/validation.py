"""Predicted vs measured scatter for GPU validation data.

Points are ``(predicted, measured, family)`` triples, mappings with those keys, or objects with
those attributes (e.g. the rows of the GPU validation comparison), so the figure does not
depend on how the comparison was produced. :func:`read_points_csv` reads them from a CSV with
columns ``predicted,measured,family`` (optionally ``id``).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..errors import InputError
from ._common import new_figure

__all__ = ["ValidationPoint", "as_points", "points_from_case_results", "read_points_csv",
           "error_summary", "predicted_vs_measured_figure"]


@dataclass(frozen=True)
class ValidationPoint:
    """One comparison: predicted and measured value of the same quantity, the case family."""

    predicted: float
    measured: float
    family: str = ""
    id: str = ""


def _point(p: Any, i: int) -> ValidationPoint:
    if isinstance(p, ValidationPoint):
        return p
    if isinstance(p, dict):
        get = p.get
    elif isinstance(p, (tuple, list)):
        if len(p) not in (2, 3, 4):
            raise InputError(f"validation point {i}: expected (predicted, measured[, family"
                             f"[, id]]), got {len(p)} values")
        vals = dict(zip(("predicted", "measured", "family", "id"), p))
        get = vals.get
    else:
        def get(key, default=None):
            return getattr(p, key, default)
    try:
        pred, meas = float(get("predicted")), float(get("measured"))
    except (TypeError, ValueError):
        raise InputError(f"validation point {i}: predicted and measured must be numbers, got "
                         f"{get('predicted')!r} and {get('measured')!r}") from None
    return ValidationPoint(pred, meas, str(get("family", "") or ""), str(get("id", "") or ""))


def as_points(points: Iterable[Any]) -> list[ValidationPoint]:
    """Normalise triples / mappings / objects to :class:`ValidationPoint`."""
    return [_point(p, i) for i, p in enumerate(points)]


_QUANTITIES = {"time": ("time_pred", "time_meas"), "hbm": ("hbm_pred", "hbm_meas"),
               "l2": ("l2_pred", "l2_meas")}


def points_from_case_results(results: Iterable[Any], quantity: str = "time"
                             ) -> list[ValidationPoint]:
    """Points from the GPU validation comparison (``memsim.validation.compare.compare_cases``
    rows: ``time_pred``/``time_meas``, ``hbm_*``, ``l2_*``, ``family``, ``case_id``); cases
    without that measurement are left out."""
    if quantity not in _QUANTITIES:
        raise InputError(f"quantity {quantity!r}: expected one of {', '.join(_QUANTITIES)}")
    pred, meas = _QUANTITIES[quantity]
    return [ValidationPoint(float(getattr(r, pred)), float(getattr(r, meas)),
                            str(getattr(r, "family", "")), str(getattr(r, "case_id", "")))
            for r in results if getattr(r, meas, None) and getattr(r, pred, None) is not None]


def read_points_csv(path: "str | Path") -> list[ValidationPoint]:
    """Points from a CSV with a header naming ``predicted``, ``measured`` (and optionally
    ``family``, ``id``)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"predicted", "measured"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                             "expected a header with predicted,measured[,family][,id]")
        return as_points(list(reader))


def error_summary(points: Sequence[ValidationPoint]) -> dict[str, dict[str, float]]:
    """Per family (and ``all``): count, median and max of |predicted − measured| / measured,
    over points with a positive measurement."""
    groups: dict[str, list[float]] = {}
    for p in points:
        if p.measured > 0 and math.isfinite(p.predicted):
            err = abs(p.predicted - p.measured) / p.measured
            groups.setdefault(p.family or "-", []).append(err)
            groups.setdefault("all", []).append(err)
    return {k: {"n": len(v), "median_rel_error": float(np.median(v)),
                "max_rel_error": float(np.max(v))} for k, v in groups.items()}


def predicted_vs_measured_figure(points: Iterable[Any], quantity: str = "kernel time",
                                 unit: str = "s", title: str | None = None,
                                 bands: Sequence[float] = (0.1, 0.25)) -> Figure:
    """Log-log scatter of predicted vs measured, coloured by family, with the y = x line and
    ±``bands`` relative-error bands; the title gives the median relative error."""
    pts = [p for p in as_points(points) if p.predicted > 0 and p.measured > 0]
    if not pts:
        raise InputError("predicted_vs_measured_figure needs at least one point with positive "
                         "predicted and measured values")
    fig = new_figure(6.0, 5.6)
    ax = fig.add_subplot()
    families = list(dict.fromkeys(p.family or "-" for p in pts))
    markers = "osD^v<>Pp*"
    for i, fam in enumerate(families):
        sel = [p for p in pts if (p.family or "-") == fam]
        ax.scatter([p.measured for p in sel], [p.predicted for p in sel], s=28,
                   marker=markers[i % len(markers)], color=f"C{i % 10}", edgecolor="black",
                   lw=0.5, label=f"{fam} ({len(sel)})", zorder=3)
    values = [v for p in pts for v in (p.predicted, p.measured)]
    lo, hi = min(values) / 1.6, max(values) * 1.6
    x = np.array([lo, hi])
    ax.plot(x, x, color="black", lw=1, label="predicted = measured")
    for j, b in enumerate(sorted(bands)):
        ax.fill_between(x, x * (1 - b), x * (1 + b), color="0.5", alpha=0.12 + 0.05 * j,
                        lw=0, label=f"±{b:.0%}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel(f"measured {quantity} ({unit})")
    ax.set_ylabel(f"predicted {quantity} ({unit})")
    ax.grid(True, which="major", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
    summary = error_summary(pts)["all"]
    ax.set_title(title or f"Predicted vs measured {quantity}\n{summary['n']} cases, median "
                 f"|error| {summary['median_rel_error']:.1%}, max "
                 f"{summary['max_rel_error']:.1%}", fontsize=10)
    return fig
