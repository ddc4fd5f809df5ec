"""I/O lower bounds at the SRAM boundary for attention and matrix multiplication.

Every bound is a *valid* (conservative) lower bound on the bytes moved between a fast memory of
``sram_bytes`` and the next level, for any schedule whose on-chip working set fits in
``sram_bytes``, that performs each multiply-add of QKᵀ once (no recomputation; true of every
memsim schedule), with the standard (non-Strassen) matrix product. The reported value is the
maximum of the valid terms below; ``binding`` names the one that wins.

Attention (per (batch, query head), P = number of visible (q, k) pairs, F = P·d multiply-adds
of QKᵀ; totals are summed over batch × heads):

* ``compulsory`` (exact): read every query row that sees at least one key, every key/value
  row visible from at least one query (Q, K, V at ``dtype_bytes``; K/V once per key/value
  head), write all of O (``Nq·d``). Without masks: ``3Nd`` reads + ``Nd`` writes, FlashAttention's Ω(Nd) term.
* ``small_cache`` (Saha & Ye Thm 3.7 + Smith et al.): writing each QKᵀ entry the first time it
  is computed turns an attention algorithm into a matmul algorithm at a cost of P extra
  writes, and Smith et al. bound matmul I/O by ``2F/√M − 2M`` (their leading constant is
  tight; their per-phase FMA count applies to any subset of the FMAs, hence F = P·d under
  masks). So I/O ≥ ``2·F/√M − 2M − P`` words. It dominates for M < d².
* ``large_cache`` (our constant, following the partition argument of Saha & Ye Lemma 3.3/3.4,
  whose Θ constant the paper does not give): cut the execution into segments of M I/Os. In a
  segment at most 2M elements of Q and K are available (M cached + M read), so at most
  ``(M/d)²`` dot products can be completed entirely inside it (I full rows of Q and J of K
  with (I+J)·d ≤ 2M); every other dot product touched has a partial sum crossing a segment
  boundary (cached at the start, read, cached at the end, or written: ≤ 3M values) and
  contributes < d products. So a segment does at most ``M²/d + 3M·d`` products and
  I/O ≥ M·(F/(M²/d + 3Md) − 1) = ``P·d²/(M + 3d²) − M`` words. For M ≥ d² this is
  ≥ N²d²/(4M) − M, the Θ(N²d²/M) of Saha & Ye Theorem 3.1 with constant 1/4.

Words and bytes: M is counted in words of the *smallest* element size the schedule moves
(``w = min(dtype_bytes, intermediate_bytes)``, ``M = floor(sram_bytes / w)``) and the
M-dependent terms are converted back with ``w`` bytes per word; both choices can only lower
the bound, so it stays valid with mixed dtypes (fp32 statistics only move more bytes).
The −M terms are charged once for the whole problem (one fast memory); where every thread
block starts with an empty SRAM and discards it at exit the same argument gives the bound
without −M, so keeping it is conservative.

Matrix multiplication C = A·B (A m×k, B k×n), in elements of ``dtype_bytes``:
``max(mk + kn + mn, 2mnk/√M − 2M)`` (compulsory; Smith et al., M = floor(sram_bytes / e)).
With a weight-quantized B, operands count at their own sizes and M in words of the smaller.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from memsim.errors import InputError
from memsim.workloads.masks import visible_counts

__all__ = ["LowerBound", "attention_lower_bound", "matmul_lower_bound"]

_ELEMENT_SIZES = (0.5, 1, 2, 4, 8)


@dataclass(frozen=True)
class LowerBound:
    """A lower bound on I/O bytes: ``io_bytes`` = max of ``terms`` (bytes per term), the
    name of the ``binding`` term and a human-readable ``formula`` with the numbers used."""

    io_bytes: float
    binding: str
    formula: str
    terms: Mapping[str, float] = field(compare=True)

    def ratio(self, simulated_bytes: float) -> float:
        """``simulated_bytes / io_bytes`` (inf when the bound is 0)."""
        return simulated_bytes / self.io_bytes if self.io_bytes > 0 else math.inf


def _words(sram_bytes: float, word_bytes: float) -> int:
    if not sram_bytes > 0:
        raise InputError(f'"sram_bytes" must be > 0, got {sram_bytes!r}')
    m = int(sram_bytes // word_bytes)
    if m < 1:
        raise InputError(f'"sram_bytes" ({sram_bytes}) holds no element of {word_bytes} B')
    return m


def _check_size(name: str, value: Any) -> float:
    if value not in _ELEMENT_SIZES:
        raise InputError(f'"{name}" must be one of {_ELEMENT_SIZES}, got {value!r}')
    return value


def _pick(terms: dict[str, float]) -> tuple[str, float]:
    name = max(terms, key=lambda k: terms[k])
    return name, terms[name]


def attention_lower_bound(*, seq_q: int, seq_k: int, head_dim: int, dtype_bytes: float,
                          sram_bytes: float, batch: int = 1, heads: int = 1,
                          kv_heads: int | None = None, causal: bool = False, window: int | None = None, sparse: Any = None,
                          intermediate_bytes: float | None = None) -> LowerBound:
    """Attention forward I/O lower bound in bytes at the boundary of a fast memory of
    ``sram_bytes`` (see the module docstring for each term and its constant).

    The compulsory K/V reads are counted once per *key/value* head (``kv_heads``, default
    ``heads``), so the bound also holds for a schedule that shares K/V among the query heads
    of a GQA group on chip."""
    e = _check_size("dtype_bytes", dtype_bytes)
    ie = e if intermediate_bytes is None else _check_size("intermediate_bytes",
                                                          intermediate_bytes)
    kv_heads = heads if kv_heads is None else kv_heads
    for name, v in (("batch", batch), ("heads", heads), ("head_dim", head_dim),
                    ("kv_heads", kv_heads)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f'"{name}" must be an integer >= 1, got {v!r}')
    pairs, rows, keys = visible_counts(seq_q, seq_k, causal, window, sparse)
    bh, d = batch * heads, head_dim
    w = min(e, ie)
    m = _words(sram_bytes, w)
    if heads % kv_heads:
        raise InputError(f'"kv_heads" must divide "heads" ({heads}), got {kv_heads}')
    compulsory = (bh * (rows * d + seq_q * d) + batch * kv_heads * 2 * keys * d) * e
    f = bh * pairs * d
    small = max(0.0, 2 * f / math.sqrt(m) - 2 * m - bh * pairs) * w
    large = max(0.0, bh * pairs * d * d / (m + 3 * d * d) - m) * w
    terms = {"compulsory": compulsory, "small_cache": small, "large_cache": large}
    binding, value = _pick(terms)
    formula = (
        f"max(compulsory=(rows·d + Nq·d + (kv/h)·2·keys·d)·e, small_cache=(2·P·d/√M − 2M − P)·w, "
        f"large_cache=(P·d²/(M + 3d²) − M)·w) with P={pairs}, rows={rows}, keys={keys}, "
        f"Nq={seq_q}, d={d}, e={e}, w={w}, M={m} words, ×{bh} (batch·heads) -> {binding}")
    return LowerBound(value, binding, formula, terms)


def matmul_lower_bound(m: int, n: int, k: int, dtype_bytes: float,
                       sram_bytes: float, *, b_dtype_bytes: float | None = None,
                       group_size: int | None = None, group_bytes: float = 0.0) -> LowerBound:
    """GEMM C = A·B (A m×k, B k×n): ``max(mk + kn + mn, 2mnk/√M − 2M)`` elements × e
    (compulsory; Smith, Lowery, Langou & van de Geijn), M = floor(sram_bytes / e).

    Weight-quantized B (``b_dtype_bytes`` per element, plus ``group_bytes`` of scale/zero
    point per ``group_size`` weights along k per column): the compulsory term counts each
    operand at its own size (A and C at e, B at b, ``n·ceil(k/g)`` metadata entries); the
    matmul term counts words of the smaller element size ``w = min(e, b)`` with
    ``M = floor(sram_bytes / w)``, which can only lower it (stays valid)."""
    e = _check_size("dtype_bytes", dtype_bytes)
    for name, v in (("m", m), ("n", n), ("k", k)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f'"{name}" must be an integer >= 1, got {v!r}')
    if b_dtype_bytes is None and group_size is None:
        words = _words(sram_bytes, e)
        terms = {"compulsory": (m * k + k * n + m * n) * e,
                 "matmul": max(0.0, 2 * m * n * k / math.sqrt(words) - 2 * words) * e}
        binding, value = _pick(terms)
        formula = (f"max(compulsory=(mk + kn + mn)·e, matmul=(2mnk/√M − 2M)·e) with m={m}, "
                   f"n={n}, k={k}, e={e}, M={words} words -> {binding}")
        return LowerBound(value, binding, formula, terms)
    b = e if b_dtype_bytes is None else _check_size("b_dtype_bytes", b_dtype_bytes)
    meta = 0
    if group_size is not None:
        if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
            raise InputError(f'"group_size" must be an integer >= 1, got {group_size!r}')
        if not isinstance(group_bytes, (int, float)) or not group_bytes > 0:
            raise InputError(f'"group_bytes" must be a number > 0, got {group_bytes!r}')
        meta = n * -(-k // group_size) * group_bytes
    w = min(e, b)
    words = _words(sram_bytes, w)
    terms = {"compulsory": (m * k + m * n) * e + k * n * b + meta,
             "matmul": max(0.0, 2 * m * n * k / math.sqrt(words) - 2 * words) * w}
    binding, value = _pick(terms)
    formula = (f"max(compulsory=(mk + mn)·e + kn·b + n·ceil(k/g)·s, matmul=(2mnk/√M − 2M)·w) "
               f"with m={m}, n={n}, k={k}, e={e}, b={b}, g={group_size}, s={group_bytes}, "
               f"w={w}, M={words} words -> {binding}")
    return LowerBound(value, binding, formula, terms)
