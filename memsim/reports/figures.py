"""Figures from ``Result`` objects: hierarchical roofline and bytes per memory level.

Everything is derived from the result alone (the report never reaches into the engine): the
roofline's per-resource times give each level's effective bandwidth (``bytes / time``) and each
instruction class's rate (``flops / time``), exactly the numbers the roofline was computed from.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..errors import InputError
from ._common import describe_run, format_bytes, new_figure

__all__ = ["LevelRoof", "RooflineData", "roofline_data", "roofline_figure",
           "bytes_per_level_figure"]

LEVEL_COLOURS = {"sram": "#1b9e77", "l2": "#d95f02", "hbm": "#7570b3", "host": "#e7298a",
                 "ssd": "#66a61e"}
_MARKERS = "oD^sv<>Pp*"


def _colour(level: str, index: int) -> str:
    return LEVEL_COLOURS.get(level, f"C{index % 10}")


@dataclass(frozen=True)
class LevelRoof:
    """One level's roof: bytes moved, effective bandwidth (B/s), arithmetic intensity
    (FLOP/B) and ridge point (FLOP/B)."""

    level: str
    bytes: float
    bandwidth: float
    intensity: float
    ridge: float


@dataclass(frozen=True)
class RooflineData:
    """What the hierarchical roofline of one run plots: the compute peak of its instruction mix
    (FLOP/s), the achieved rate ``flops / time_s`` and one roof per level that moved bytes."""

    label: str
    flops: float
    peak_flops_per_s: float
    achieved_flops_per_s: float
    roofs: tuple[LevelRoof, ...]


def roofline_data(result: Any) -> RooflineData:
    """Roofs of ``result`` (a :class:`memsim.result.Result`) from its roofline section."""
    rl = result.roofline
    if rl is None or not rl.times_s:
        raise InputError(f"result of {describe_run(result)} has no roofline times; "
                         "the hierarchical roofline needs roofline.times_s")
    times = dict(rl.times_s)
    compute = [times[c] for c in result.flops_by_class if c in times and times[c] > 0]
    if not compute or not result.flops:
        raise InputError(f"result of {describe_run(result)} has no compute time in its "
                         "roofline; nothing to place on a roofline")
    peak = result.flops / max(compute)
    roofs = []
    for name, t in result.levels.items():
        moved = t.read_bytes + t.write_bytes
        if moved <= 0 or not times.get(name):
            continue
        bw = moved / times[name]
        roofs.append(LevelRoof(name, moved, bw, result.flops / moved, peak / bw))
    achieved = result.flops / result.time_s if result.time_s > 0 else math.nan
    return RooflineData(describe_run(result), result.flops, peak, achieved, tuple(roofs))


def roofline_figure(results: "Any | Sequence[Any]", title: str | None = None) -> Figure:
    """Hierarchical roofline: one roof per memory level (``min(peak, AI·BW)``, log-log), and
    each run placed at its arithmetic intensity against every level at the FLOP/s it achieved
    (simulated). Several results share the axes (one marker shape per run)."""
    runs = [roofline_data(r) for r in (results if isinstance(results, (list, tuple))
                                       else [results])]
    if not runs:
        raise InputError("roofline_figure needs at least one result")
    fig = new_figure(7.5, 5.5 + 0.2 * len(runs))
    ax = fig.add_subplot()
    ais = [r.intensity for run in runs for r in run.roofs] + \
          [r.ridge for run in runs for r in run.roofs]
    lo, hi = min(ais) / 8, max(ais) * 8
    x = np.logspace(math.log10(lo), math.log10(hi), 200)
    drawn: dict[str, int] = {}
    for run in runs:
        for roof in run.roofs:
            key = f"{roof.level}@{roof.bandwidth:.6g}@{run.peak_flops_per_s:.6g}"
            if key in drawn:
                continue
            drawn[key] = len(drawn)
            colour = _colour(roof.level, len(drawn))
            ax.plot(x, np.minimum(run.peak_flops_per_s, x * roof.bandwidth), color=colour,
                    lw=1.8, label=f"{roof.level} roof: {roof.bandwidth / 1e12:.3g} TB/s")
        ax.axhline(run.peak_flops_per_s, color="0.3", lw=0.8, ls=":")
    level_handles, level_labels = ax.get_legend_handles_labels()
    run_handles = []
    for i, run in enumerate(runs):
        marker = _MARKERS[i % len(_MARKERS)]
        for j, roof in enumerate(run.roofs):
            ax.plot(roof.intensity, run.achieved_flops_per_s, marker=marker, ms=8,
                    color=_colour(roof.level, j), mec="black", ls="none")
        run_handles.append(Line2D([], [], marker=marker, color="0.5", mec="black", ls="none",
                                  label=f"{run.label}: {run.achieved_flops_per_s / 1e12:.3g} "
                                        f"TFLOP/s simulated"))
    peak = runs[0].peak_flops_per_s
    ax.annotate(f"compute peak of the instruction mix: {peak / 1e12:.4g} TFLOP/s", (hi, peak),
                xytext=(-4, 4), textcoords="offset points", fontsize=8, color="0.3",
                ha="right")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte moved at the level)")
    ax.set_ylabel("performance (FLOP/s)")
    ymin = min([run.achieved_flops_per_s for run in runs] +
               [min(r.bandwidth for r in run.roofs) * lo for run in runs if run.roofs])
    ax.set_ylim(ymin / 3, peak * 3)
    ax.grid(True, which="both", alpha=0.25)
    first = ax.legend(level_handles, level_labels, loc="lower right", fontsize=8,
                      title="memory level", title_fontsize=8)
    ax.add_artist(first)
    ax.legend(handles=run_handles, loc="upper center", bbox_to_anchor=(0.5, -0.14),
              fontsize=7, title="run (one marker per level, at the simulated FLOP/s)",
              title_fontsize=8)
    ax.set_title(title or f"Hierarchical roofline\n{runs[0].label}"
                 + (f" (+{len(runs) - 1} more)" if len(runs) > 1 else ""), fontsize=10)
    return fig


def bytes_per_level_figure(results: "Any | Sequence[Any]", title: str | None = None,
                           labels: Sequence[str] | None = None) -> Figure:
    """Bytes read from and written into each memory level as grouped bars (log scale),
    one group per level, one pair of bars (read, write) per result."""
    runs = list(results) if isinstance(results, (list, tuple)) else [results]
    if not runs:
        raise InputError("bytes_per_level_figure needs at least one result")
    labels = list(labels) if labels is not None else [
        describe_run(r) if len(runs) == 1 else f"{r.schedule.get('kind', '?')}" for r in runs]
    levels = [name for name in runs[0].levels
              if any(r.levels.get(name) and (r.levels[name].read_bytes or
                                            r.levels[name].write_bytes) for r in runs)]
    if not levels:
        raise InputError("no level moved any bytes in these results")
    fig = new_figure(max(6.0, 1.6 * len(levels) * max(1, len(runs)) ** 0.5 + 2), 4.5)
    ax = fig.add_subplot()
    n = len(runs)
    width = 0.8 / (2 * n)
    xs = np.arange(len(levels))
    for i, (run, label) in enumerate(zip(runs, labels)):
        reads = [run.levels[name].read_bytes if name in run.levels else 0 for name in levels]
        writes = [run.levels[name].write_bytes if name in run.levels else 0 for name in levels]
        off = -0.4 + (2 * i + 0.5) * width
        suffix = f" ({label})" if n > 1 else ""
        rb = ax.bar(xs + off, reads, width, color=f"C{(2 * i) % 10}", label="read" + suffix)
        wb = ax.bar(xs + off + width, writes, width, color=f"C{(2 * i + 1) % 10}",
                    label="write" + suffix)
        for bars, values in ((rb, reads), (wb, writes)):
            for bar, v in zip(bars, values):
                if v > 0:
                    ax.annotate(format_bytes(v), (bar.get_x() + bar.get_width() / 2, v),
                                ha="center", va="bottom", fontsize=7, rotation=90 if n > 1
                                else 0, xytext=(0, 2), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_xticks(xs, [f"{name}\n(read from / written into)" for name in levels], fontsize=8)
    ax.set_ylabel("bytes")
    ax.set_xlabel("memory level")
    top = max(max(r.levels[name].read_bytes, r.levels[name].write_bytes)
              for r in runs for name in levels if name in r.levels)
    low = min(v for r in runs for name in levels if name in r.levels
              for v in (r.levels[name].read_bytes, r.levels[name].write_bytes) if v > 0)
    ax.set_ylim(bottom=low / 5, top=top * 8)     # the smallest bar stays visible
    ax.grid(True, axis="y", which="major", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left", ncols=min(2, n))
    ax.set_title(title or f"Bytes per memory level\n{describe_run(runs[0])}"
                 if n == 1 else title or "Bytes per memory level", fontsize=10)
    return fig
