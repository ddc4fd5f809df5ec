"""Timeline (Gantt chart) of a run's event trace: memory levels, links and compute units.

The trace is the result's ``trace`` (``simulate`` with ``simulation.trace: true`` at tile
granularity): busy intervals with ``resource`` ``load`` / ``store`` (bytes through L2,
``hbm_bytes`` of them from or to HBM) or a compute unit, each on one SM. A row shows the union
of its intervals, so overlapping transfers of co-resident blocks appear as one busy bar.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..errors import InputError
from ._common import describe_run, new_figure

__all__ = ["busy_intervals", "timeline_rows", "timeline_figure"]

CATEGORY_COLOURS = {"memory": "#7570b3", "link": "#d95f02", "compute": "#1b9e77"}


def busy_intervals(starts: Sequence[float], ends: Sequence[float]) -> np.ndarray:
    """Union of the intervals ``[start, end)`` as an (n, 2) array of disjoint, sorted
    intervals (touching intervals are merged)."""
    s, e = np.asarray(starts, dtype=float), np.asarray(ends, dtype=float)
    if s.size == 0:
        return np.empty((0, 2))
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    reach = np.maximum.accumulate(e)
    new = np.empty(len(s), dtype=bool)
    new[0] = True
    new[1:] = s[1:] > reach[:-1]
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, len(s) - 1)
    return np.column_stack([s[first], reach[last]])


def timeline_rows(trace: Sequence[Mapping[str, Any]], max_sms: int = 2
                  ) -> list[tuple[str, str, np.ndarray]]:
    """Rows of the chart as ``(label, category, intervals)``: HBM (memory), the L2 read and
    write links aggregated over all SMs, then per SM (the first ``max_sms`` SMs that appear)
    its compute units and its load/store links."""
    if not trace:
        raise InputError("the result has no event trace; run with simulation.trace: true "
                         "(memsim run --trace FILE, or --set simulation.trace=true) at tile "
                         "granularity")
    start = np.array([e["start"] for e in trace], dtype=float)
    end = np.array([e["end"] for e in trace], dtype=float)
    res = np.array([str(e["resource"]) for e in trace])
    sm = np.array([int(e.get("sm", 0)) for e in trace])
    hbm = np.array([float(e.get("hbm_bytes", 0) or 0) for e in trace])
    rows = []
    transfers = (res == "load") | (res == "store")
    if np.any(hbm[transfers] > 0):
        m = transfers & (hbm > 0)
        rows.append(("HBM (transfers that reach it)", "memory", busy_intervals(start[m],
                                                                            end[m])))
    for kind, label in (("load", "link L2 → SRAM (all SMs)"), ("store", "link SRAM → L2 "
                                                                         "(all SMs)")):
        m = res == kind
        if np.any(m):
            rows.append((label, "link", busy_intervals(start[m], end[m])))
    units = [u for u in dict.fromkeys(res.tolist()) if u not in ("load", "store")]
    for s in sorted(set(sm.tolist()))[:max_sms]:
        on = sm == s
        for u in units:
            m = on & (res == u)
            if np.any(m):
                rows.append((f"SM {s}: {u}", "compute", busy_intervals(start[m], end[m])))
        for kind in ("load", "store"):
            m = on & (res == kind)
            if np.any(m):
                rows.append((f"SM {s}: {kind}", "link", busy_intervals(start[m], end[m])))
    return rows


def timeline_figure(result: Any, max_sms: int = 2, window: tuple[float, float] | None = None,
                    title: str | None = None) -> Figure:
    """Gantt chart of ``result.trace``: one row per memory level / link / compute unit, busy
    intervals as bars, time in µs, kernel boundaries as vertical lines. ``window`` = (t0, t1)
    in seconds zooms in."""
    rows = timeline_rows(result.trace or (), max_sms)
    fig = new_figure(8.0, 1.2 + 0.42 * len(rows))
    ax = fig.add_subplot()
    scale = 1e6
    for i, (label, category, iv) in enumerate(rows):
        y = len(rows) - 1 - i
        if len(iv):
            ax.broken_barh(list(zip(iv[:, 0] * scale, (iv[:, 1] - iv[:, 0]) * scale)),
                           (y - 0.38, 0.76), facecolors=CATEGORY_COLOURS[category], lw=0)
    ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)], fontsize=8)
    for k in result.kernels or ():
        for key in ("start_s", "end_s"):
            if k.get(key) is not None:
                ax.axvline(float(k[key]) * scale, color="0.4", lw=0.8, ls=":")
        if k.get("start_s") is not None:
            ax.annotate(str(k.get("name", "")), (float(k["start_s"]) * scale, len(rows) - 0.5),
                        fontsize=7, color="0.3", va="bottom", annotation_clip=False)
    if window is not None:
        ax.set_xlim(window[0] * scale, window[1] * scale)
    else:
        ax.set_xlim(left=0)
    ax.set_ylim(-0.7, len(rows) - 0.1)
    ax.set_xlabel("time since the run started (µs)")
    ax.grid(True, axis="x", alpha=0.25)
    fig.legend(handles=[Patch(color=c, label=k) for k, c in CATEGORY_COLOURS.items()],
               fontsize=8, loc="outside lower center", ncols=3)
    ax.set_title(title or f"Timeline (busy intervals; first {max_sms} SMs shown)\n"
                 f"{describe_run(result)}", fontsize=10)
    return fig
