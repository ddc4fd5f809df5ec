"""Measurements of SDPA on a streaming fabric: intermediate memory vs N, throughput vs the
fabric's peak, the naive version's minimum row-buffer depth, and numerical agreement.

The analysis of the naive version predicts its row buffer (``exp->div``) must hold one whole row
of exp'd scores before the row sum reaches the divider: ``N`` elements, i.e.
``ceil(N / lanes)`` entries. :func:`min_buffer_depth` measures it by simulation.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..hardware.model import FabricSpec
from .fabric import DeadlockError
from .sdpa import BUFFER_CHANNEL, SdpaParams, SdpaRun, make_inputs, reference_attention, run_sdpa

__all__ = ["occupancy_vs_seq", "fit_slope", "throughput", "min_buffer_depth",
           "predicted_buffer_entries", "max_relative_error"]


def fit_slope(xs, ys) -> float:
    """Least-squares slope of ys against xs."""
    return float(np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)[0])


def occupancy_vs_seq(spec: FabricSpec | None, seqs, variant: str, head_dim: int = 64,
                     lanes: int | None = None, seq_q: int | None = 8) -> list[dict]:
    """Peak FIFO occupancy for each N in ``seqs``: the sum over intermediate FIFOs (the
    intermediate memory) and the largest single FIFO, in elements. ``seq_q`` query rows are
    enough: occupancy is periodic per row after the first."""
    rows = []
    for n in seqs:
        run = run_sdpa(spec, SdpaParams(seq=n, head_dim=head_dim, variant=variant, lanes=lanes,
                                        seq_q=seq_q))
        name, peak = run.max_fifo()
        rows.append({"variant": variant, "seq": n,
                     "intermediate_peak_elements": run.intermediate_peak_elements(),
                     "max_fifo": name, "max_fifo_peak_elements": peak})
    return rows


def throughput(spec: FabricSpec | None, params: SdpaParams) -> dict:
    """Cycles, outputs per cycle and the fraction of the fabric's peak for one run."""
    run = run_sdpa(spec, params)
    return {"variant": params.variant, "seq": params.seq, "cycles": run.cycles,
            "ideal_cycles": run.ideal_cycles, "peak_fraction": run.peak_fraction,
            "outputs_per_cycle": run.outputs_per_cycle,
            "peak_outputs_per_cycle": run.peak_outputs_per_cycle,
            "scores_per_cycle": run.scores_per_cycle}


def predicted_buffer_entries(seq: int, lanes: int) -> int:
    """Entries the naive row buffer needs by the analysis: one row of N scores."""
    return math.ceil(seq / lanes)


def _completes(spec, params: SdpaParams, depth: int) -> SdpaRun | None:
    try:
        return run_sdpa(spec, replace(params, buffer_depth=depth))
    except DeadlockError as exc:
        if BUFFER_CHANNEL not in exc.blocking_channels:
            raise      # a different FIFO closes the cycle: not what this search is about
        return None


def min_buffer_depth(spec: FabricSpec | None, seq: int, head_dim: int = 64,
                     lanes: int | None = None, seq_q: int = 4) -> dict:
    """Smallest depth (entries) of the naive row buffer that does not deadlock, and the
    smallest that reaches the throughput of an unbounded buffer; with the prediction.

    Deadlock freedom is monotone in depth (a deeper FIFO only ever lets more move), so a
    binary search applies; so is the cycle count (non-increasing in depth)."""
    base = SdpaParams(seq=seq, head_dim=head_dim, variant="naive", lanes=lanes, seq_q=seq_q)
    lanes = lanes or (spec.channel.width if spec else 1)
    predicted = predicted_buffer_entries(seq, lanes)
    high = 2 * predicted + 64
    best = _completes(spec, base, high)
    if best is None:
        raise RuntimeError(f"naive SDPA deadlocks even with a {high}-entry row buffer")
    lo, hi = 1, high                     # smallest completing depth in (lo - 1, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if _completes(spec, base, mid) is None:
            lo = mid + 1
        else:
            hi = mid
    min_depth = hi
    lo, hi = min_depth, high             # smallest depth as fast as ``high``
    while lo < hi:
        mid = (lo + hi) // 2
        if _completes(spec, base, mid).cycles > best.cycles:
            lo = mid + 1
        else:
            hi = mid
    return {"seq": seq, "lanes": lanes, "predicted_entries": predicted,
            "predicted_elements": seq, "min_depth_entries": min_depth,
            "min_depth_elements": min_depth * lanes, "full_rate_depth_entries": hi}


def max_relative_error(run: SdpaRun, inputs: tuple | None = None) -> float:
    """Largest |out - ref| / max|ref| over the outputs, ref = numpy attention."""
    q, k, v = inputs if inputs is not None else make_inputs(run.params)
    ref = reference_attention(q, k, v)
    return float(np.max(np.abs(run.output - ref)) / np.max(np.abs(ref)))
