"""Reference numerics: numba kernels that run each attention schedule's tiling on real numbers
and count the elements they move across the SRAM boundary while they run.

    from memsim.numerics import run_attention, reference_attention, relative_error
    res = run_attention("flash2", q, k, v, block_q=64, block_k=64, causal=True)
    err = relative_error(res.output, reference_attention(q, k, v, causal=True)[0])
    res.read_bytes, res.write_bytes, res.read_elements["K"]
    check_numerics(workload_dict, schedule_dict)   # seeded inputs, error and traffic as a dict

Schedules: standard, flash1, flash2, square_tiling, chunked, flash_decoding, each with the loop
order, block sizes, tile skipping and per-tensor traffic of ``docs/schedules.md`` (tests check
the counts against ``memsim.bounds.closed_forms`` per tensor). Masks: causal (bottom-right
aligned), sliding window, block-sparse (layout from ``memsim.workloads.masks``), combined by
AND; GQA/MQA through ``kv_heads < heads``. Kernels are ``@njit(cache=True)``; one parallel
driver runs the (batch, head) pairs with ``prange``.

Numerical conventions
---------------------
* Working precision = the inputs' dtype (float32 or float64): float32 kernels multiply and
  accumulate in float32. Softmax statistics and partials (l, m, L, D, chunk summaries, split
  partials) are *counted* as fp32 (4 B) but kept in the working precision.
* ``dtype_round='bf16'|'fp16'`` rounds q, k, v before and O after the kernel (round to nearest
  even; bf16 on the float32 bit pattern). ``intermediate_round`` rounds stored S, P (standard)
  and A (square_tiling).
* Fully masked rows (no visible key): O = 0 and L = -inf, never NaN. A NaN input propagates to
  the rows it touches (maxima are NaN-propagating, so NaN is never mistaken for a masked key).
* Online-softmax schedules subtract running maxima (no overflow for any finite scores).
* ``square_tiling`` stores A = exp(S - c_r) instead of Saha & Ye's exp(S): a per-row constant
  cancels exactly in D^-1 A V, and changes no traffic. c_r = scale * |q_r| * max_j |k_j| is a
  Cauchy-Schwarz upper bound of every score of row r, so nothing overflows; it is computed
  before the schedule runs (O((Nq + Nk) d) work, not part of the schedule's tile traffic). If a
  row's largest score lies more than ~87 (float32) or ~708 (float64) below c_r, all its exps
  underflow; such rows are counted in ``AttentionNumerics.underflow_rows`` (not hidden).
"""
from .api import (SCHEDULES, AttentionNumerics, reference_attention, relative_error,
                  run_attention)
from .check import check_numerics
from .rounding import round_array

__all__ = ["SCHEDULES", "AttentionNumerics", "run_attention", "reference_attention",
           "relative_error", "round_array", "check_numerics"]
