"""Traffic across the SRAM boundary as a function of the SRAM size M, for attention schedules.

Each schedule picks its block sizes for a given M by its *own* rule (the schedule class is
built on the hardware with ``sram`` resized to M), and the bytes come from the closed forms of
:mod:`memsim.bounds` (no simulation, so a curve of 40 sizes takes well under a second). The
Saha & Ye lower bound (:func:`memsim.bounds.attention_lower_bound`) is drawn for the same M,
and the crossover ``M = d²`` (words) between its small- and large-cache regimes is marked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..errors import CapacityError, InputError, ScheduleError
from ._common import format_bytes, new_figure

__all__ = ["SramSweep", "sram_sweep", "traffic_vs_sram_figure", "DEFAULT_SCHEDULES"]

DEFAULT_SCHEDULES = ("standard", "flash1", "flash2", "square_tiling", "chunked")
DEFAULT_SRAM_BYTES = tuple(sorted({2**k for k in range(12, 25)} |
                                  {3 * 2**k for k in range(11, 24)}))
"""4 KiB .. 24 MiB: powers of two and 1.5 × powers of two (sizes that block rules such as
FlashAttention's ``Bc = ceil(M / 4d)`` divide evenly, so no size is lost to rounding)."""


@dataclass(frozen=True)
class SramSweep:
    """Traffic (bytes read + written at the SRAM boundary) per schedule over ``sram_bytes``
    (NaN where the schedule cannot run with that SRAM), the lower bound on the same grid,
    the crossover ``M = d²`` in bytes and the hardware's own SRAM per thread block."""

    label: str
    sram_bytes: np.ndarray
    traffic: Mapping[str, np.ndarray]
    blocks: Mapping[str, list]
    lower_bound: np.ndarray
    crossover_bytes: float
    hardware_sram_bytes: float
    hardware: str
    head_dim: int = 0
    notes: Mapping[str, str] = field(default_factory=dict)

    def ratio(self, schedule: str) -> np.ndarray:
        """Traffic of ``schedule`` divided by the lower bound at each M."""
        return self.traffic[schedule] / self.lower_bound

    def smallest_sram_within(self, schedule: str, factor: float) -> float | None:
        """The smallest M of the grid at which ``schedule`` moves at most ``factor`` × the
        lower bound, or None if no M of the grid gets there."""
        ok = np.flatnonzero(self.ratio(schedule) <= factor)
        return float(self.sram_bytes[ok[0]]) if len(ok) else None


def _config(source: Any):
    from ..config import RunConfig, load_run_config
    if isinstance(source, RunConfig):
        return source
    if hasattr(source, "workload") and hasattr(source, "levels"):     # a Result
        workload = {k: v for k, v in dict(source.workload).items() if v is not None}
        return load_run_config({"hardware": source.hardware, "workload": workload,
                                "schedule": {"kind": "flash2"}})
    return load_run_config(source)


def sram_sweep(source: Any, sram_bytes: Sequence[float] | None = None,
               schedules: Sequence[str] = DEFAULT_SCHEDULES,
               options: Mapping[str, Mapping[str, Any]] | None = None) -> SramSweep:
    """Closed-form traffic vs SRAM size for the attention workload of ``source`` (a run config
    path / mapping / RunConfig, or a Result).

    ``sram_bytes``: SRAM per thread block to evaluate (default :data:`DEFAULT_SRAM_BYTES`). ``options``: per-schedule options such as ``{"flash2": {"block_q": 128}}``;
    block sizes not given are chosen by the schedule's rule for each M. A *list* of option
    mappings is a search: each M keeps the candidate with the least traffic that fits
    (``blocks`` records which).
    """
    from ..bounds import attention_lower_bound, attention_traffic
    from ..dtypes import dtype_bytes
    from ..schedulers import get_schedule
    cfg = _config(source)
    if cfg.workload_kind != "attention":
        raise InputError(f"traffic vs SRAM size needs an attention workload, got "
                         f"{cfg.workload_kind!r}")
    wl, hw = cfg.workload, cfg.hardware
    grid = np.asarray(sram_bytes if sram_bytes is not None else DEFAULT_SRAM_BYTES, dtype=float)
    if grid.ndim != 1 or not len(grid) or np.any(grid <= 0):
        raise InputError("sram_bytes must be a non-empty list of sizes > 0")
    options = dict(options or {})
    traffic = {s: np.full(len(grid), np.nan) for s in schedules}
    blocks: dict[str, list] = {s: [None] * len(grid) for s in schedules}
    lb = np.empty(len(grid))
    sram = hw.memory("sram")
    for i, m in enumerate(grid):
        hw_m = hw.with_overrides({"memories.sram.capacity": int(m),
                                  "memories.sram.max_per_block": int(m)})
        for kind in schedules:
            choices = options.get(kind, {})
            for opts in (choices if isinstance(choices, (list, tuple)) else [choices]):
                try:
                    sched = get_schedule(kind).from_dict(opts, wl, hw_m)
                except (ScheduleError, CapacityError):
                    continue                     # this tiling does not fit in this SRAM
                res = sched.resolved()
                inter = res.get("intermediate_dtype")
                t = attention_traffic(
                    kind, seq_q=wl.seq_q, seq_k=wl.seq_k, head_dim=wl.head_dim,
                    dtype_bytes=wl.dtype_bytes, batch=wl.batch, heads=wl.heads,
                    kv_heads=wl.kv_heads, block_q=res.get("block_q"),
                    block_k=res.get("block_k"), block=res.get("block"),
                    splits=res.get("splits"), causal=wl.causal, window=wl.window,
                    sparse=wl.sparse, intermediate_bytes=dtype_bytes(inter) if inter else None,
                    num_sms=hw.gpu.sms if hw.gpu else None)
                if not t.total_bytes >= traffic[kind][i]:     # NaN (none yet) or smaller
                    traffic[kind][i] = t.total_bytes
                    blocks[kind][i] = (res.get("block_q"), res.get("block_k"))
        lb[i] = attention_lower_bound(
            seq_q=wl.seq_q, seq_k=wl.seq_k, head_dim=wl.head_dim, dtype_bytes=wl.dtype_bytes,
            sram_bytes=float(m), batch=wl.batch, heads=wl.heads, kv_heads=wl.kv_heads,
            causal=wl.causal, window=wl.window, sparse=wl.sparse).io_bytes
    from ._common import describe_run
    from types import SimpleNamespace
    label = describe_run(SimpleNamespace(workload=wl.to_dict(), schedule={},
                                         hardware=cfg.hardware_name))
    return SramSweep(label=label, sram_bytes=grid, traffic=traffic, blocks=blocks,
                     lower_bound=lb, crossover_bytes=float(wl.head_dim ** 2 * wl.dtype_bytes),
                     hardware_sram_bytes=float(sram.max_per_block_bytes or sram.capacity_bytes),
                     hardware=cfg.hardware_name, head_dim=wl.head_dim)


def traffic_vs_sram_figure(sweep: "SramSweep | Any", title: str | None = None,
                           within: float | None = 1.5) -> Figure:
    """Log-log traffic vs SRAM size M per schedule, the lower bound (and ``within`` × it,
    dashed), the ``M = d²`` crossover and the hardware's SRAM per block as vertical lines.
    ``sweep`` is a :class:`SramSweep` or anything :func:`sram_sweep` accepts."""
    if not isinstance(sweep, SramSweep):
        sweep = sram_sweep(sweep)
    fig = new_figure(7.5, 5.0)
    ax = fig.add_subplot()
    markers = "os^Dv<>"
    for i, (kind, y) in enumerate(sweep.traffic.items()):
        if np.all(np.isnan(y)):
            continue
        ax.plot(sweep.sram_bytes, y, marker=markers[i % len(markers)], ms=3.5, lw=1.5,
                label=kind)
    ax.plot(sweep.sram_bytes, sweep.lower_bound, color="black", lw=2.2,
            label="lower bound (Saha & Ye; compulsory)")
    if within:
        ax.plot(sweep.sram_bytes, within * sweep.lower_bound, color="black", lw=1, ls="--",
                label=f"{within:g} × lower bound")
    ax.axvline(sweep.crossover_bytes, color="0.35", ls=":", lw=1.2)
    ax.annotate(f"M = d² ({sweep.head_dim}² words = {format_bytes(sweep.crossover_bytes)})",
                (sweep.crossover_bytes, 0.02), xycoords=("data", "axes fraction"),
                rotation=90, fontsize=8, ha="right", va="bottom", color="0.3")
    ax.axvline(sweep.hardware_sram_bytes, color="tab:red", ls="-.", lw=1)
    ax.annotate(f"{sweep.hardware}: {format_bytes(sweep.hardware_sram_bytes)} per block",
                (sweep.hardware_sram_bytes, 0.02), xycoords=("data", "axes fraction"),
                rotation=90, fontsize=8, ha="right", va="bottom", color="tab:red")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("SRAM per thread block M (bytes)")
    ax.set_ylabel("bytes read + written at the SRAM boundary (L2 ↔ SRAM)")
    ax.xaxis.set_major_formatter(lambda v, _pos: format_bytes(v) if v > 0 else "")
    ax.grid(True, which="major", alpha=0.25)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title or f"Attention traffic vs SRAM size (closed forms)\n{sweep.label}",
                 fontsize=10)
    finite = [v for y in sweep.traffic.values() for v in y[np.isfinite(y)]]
    if finite:
        ax.set_ylim(min(min(finite), float(np.min(sweep.lower_bound))) / 2,
                    max(finite) * 2)
    return fig
