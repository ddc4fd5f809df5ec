"""Shared pieces of the figures: a pyplot-free Figure factory, saving, and run descriptions.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never through pyplot, so
that making a report keeps no global figure state and works without a display.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import InputError

__all__ = ["new_figure", "save_figure", "describe_run", "format_bytes", "FORMATS"]

FORMATS = ("png", "svg")


def new_figure(width: float = 7.0, height: float = 4.5) -> Figure:
    """A Figure with an Agg canvas attached (savefig works without pyplot)."""
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, directory: "str | Path", stem: str,
                formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write ``fig`` as ``directory/stem.<fmt>`` for each format; returns the paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        if fmt not in FORMATS:
            raise InputError(f"figure format {fmt!r}: expected one of {', '.join(FORMATS)}")
        path = out / f"{stem}.{fmt}"
        fig.savefig(path, format=fmt, dpi=120)
        paths.append(path)
    return paths


def format_bytes(value: float) -> str:
    """Bytes with a binary prefix and 3 significant digits (``117 MiB``)."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.3g} B"


_WORKLOAD_KEYS = {
    "attention": (("batch", "b"), ("heads", "h"), ("kv_heads", "kv"), ("seq_q", "Nq"),
                  ("seq_k", "Nk"), ("head_dim", "d")),
    "gemm": (("m", "m"), ("n", "n"), ("k", "k")),
}


def describe_run(result: Any) -> str:
    """One line saying what was run: workload shape, schedule and hardware, e.g.
    ``attention b=4 h=32 Nq=4096 Nk=4096 d=64 bf16 · flash2 128×128 · h100-sxm``."""
    wl: Mapping = result.workload
    kind = wl.get("kind", "?")
    keys = _WORKLOAD_KEYS.get(kind)
    if keys is None:
        parts = [f"{k}={v}" for k, v in wl.items()
                 if k != "kind" and isinstance(v, (int, float, str)) and not isinstance(v, bool)]
        parts = parts[:5]
    else:
        parts = [f"{short}={wl[k]}" for k, short in keys if wl.get(k) is not None
                 and not (k == "kv_heads" and wl.get(k) == wl.get("heads"))]
    if wl.get("causal"):
        parts.append("causal")
    if wl.get("dtype"):
        parts.append(str(wl["dtype"]))
    text = f"{kind} " + " ".join(parts)
    sched = result.schedule or {}
    if sched.get("kind"):
        blocks = ""
        if sched.get("block_q") and sched.get("block_k"):
            blocks = f" {sched['block_q']}×{sched['block_k']}"
        elif sched.get("tile_m") and sched.get("tile_n"):
            blocks = f" {sched['tile_m']}×{sched['tile_n']}"
        text += f" · {sched['kind']}{blocks}"
    return f"{text} · {result.hardware}"
