"""Attention masks shared by the schedules, the closed forms and the numerics.

The definitions follow ``docs/schedules.md`` (section *Masks*); the mask is an input to every
part of memsim, not a count, so all of them import it from here.

Conventions
-----------
* Query row ``q`` (0-based) sits at absolute position ``p = q + (nk - nq)`` (bottom-right
  alignment, FlashAttention >= 2.1), so a single decode query sees the whole cache.
* Key ``k`` is visible from row ``q`` when every requested mask allows it:

  - no mask: always;
  - ``causal``: ``k <= p``;
  - ``window=W`` with ``causal``: ``p - W < k <= p``;
    without ``causal`` (neighbourhood attention): ``|k - p| < W``;
  - ``sparse`` (:class:`BlockSparse`): entry ``(q // S, k // S)`` of
    :func:`block_sparse_layout` is true.

* A tile ``(i, j)`` of ``block_q x block_k`` is *active* when at least one of its (q, k) pairs
  is visible. Edge tiles have their actual (smaller) size.

Public API
----------
``BlockSparse(density, block, seed=0)``   block-sparse mask description (frozen).
``as_block_sparse(x)``                    None | BlockSparse | mapping -> BlockSparse | None.
``block_sizes(n, b)``                     actual sizes of the ``ceil(n / b)`` blocks (int64).
``block_sparse_layout(nq, nk, block, density, seed)``  boolean (ceil(nq/S), ceil(nk/S)).
``visible(q, k, nq, nk, causal, window, sparse)``      element-level boolean (numpy broadcast).
``active_tiles(nq, nk, block_q, block_k, causal, window, sparse)``  boolean (Tr, Tc).
``visible_counts(nq, nk, causal, window, sparse)``  (visible pairs, non-empty rows, used keys).

Everything is vectorised with numpy: ``active_tiles`` for 131072 x 131072 with 128 x 128 tiles
takes well under a second.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from memsim.errors import InputError

__all__ = [
    "BlockSparse",
    "as_block_sparse",
    "block_sizes",
    "block_sparse_layout",
    "visible",
    "active_tiles",
    "visible_counts",
]


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f'"{name}" must be an integer >= {minimum}, got {value!r}')
    return int(value)


@dataclass(frozen=True)
class BlockSparse:
    """Block-sparse mask: a random layout of ``block x block`` blocks.

    ``density`` is the probability that a block is kept (0..1) before the diagonal blocks are
    forced on; ``seed`` makes the layout reproducible (numpy ``default_rng``).
    """

    density: float
    block: int
    seed: int = 0

    def __post_init__(self) -> None:
        d = self.density
        if isinstance(d, bool) or not isinstance(d, (int, float, np.floating)) or not 0 <= d <= 1:
            raise InputError(f'"block_sparse.density" must be a number in [0, 1], got {d!r}')
        _check_int("block_sparse.block", self.block, 1)
        _check_int("block_sparse.seed", self.seed, 0)


def as_block_sparse(sparse: Any) -> BlockSparse | None:
    """Normalise a block-sparse description: ``None``, a :class:`BlockSparse`, or a mapping
    with keys ``density``, ``block`` and optional ``seed`` (as in the workload YAML)."""
    if sparse is None or isinstance(sparse, BlockSparse):
        return sparse
    if isinstance(sparse, Mapping):
        unknown = set(sparse) - {"density", "block", "seed"}
        if unknown or "density" not in sparse or "block" not in sparse:
            raise InputError(
                f'"block_sparse" expects keys density, block and optional seed, got {sorted(sparse)}')
        return BlockSparse(sparse["density"], sparse["block"], sparse.get("seed", 0))
    raise InputError(f'"block_sparse" must be a mapping or BlockSparse, got {type(sparse).__name__}')


def block_sizes(n: int, b: int) -> np.ndarray:
    """Actual sizes of the ``ceil(n / b)`` blocks that split ``n`` items into blocks of ``b``
    (the last one may be smaller). Returns an int64 array."""
    n = _check_int("n", n, 0)
    b = _check_int("block", b, 1)
    t = -(-n // b)
    sizes = np.full(t, b, dtype=np.int64)
    if t:
        sizes[-1] = n - (t - 1) * b
    return sizes


def block_sparse_layout(nq: int, nk: int, block: int, density: float, seed: int = 0) -> np.ndarray:
    """Boolean layout of shape ``(ceil(nq/block), ceil(nk/block))``: entry (a, b) says whether
    query block a may attend to key block b.

    Each entry is kept with probability ``density`` (``np.random.default_rng(seed).random(shape)
    < density``). The *diagonal* blocks are then forced on: with bottom-right alignment, for each
    query block a every key block that contains an aligned position ``p = q + nk - nq`` of one of
    its rows (clipped to ``[0, nk)``) is kept, so no row is left empty by the sparse mask alone
    (for ``nq == nk`` these are exactly the blocks (a, a)).
    """
    nq = _check_int("seq_q", nq, 1)
    nk = _check_int("seq_k", nk, 1)
    spec = BlockSparse(density, block, seed)  # validates
    s = spec.block
    tq, tk = -(-nq // s), -(-nk // s)
    layout = np.random.default_rng(spec.seed).random((tq, tk)) < spec.density
    off = nk - nq
    a = np.arange(tq, dtype=np.int64)
    p_first = np.clip(a * s + off, 0, nk - 1) // s
    p_last = np.clip(np.minimum((a + 1) * s, nq) - 1 + off, 0, nk - 1) // s
    cols = np.arange(tk, dtype=np.int64)
    layout |= (cols[None, :] >= p_first[:, None]) & (cols[None, :] <= p_last[:, None])
    return layout


def _check_mask(causal: Any, window: Any) -> int | None:
    if not isinstance(causal, (bool, np.bool_)):
        raise InputError(f'"causal" must be true or false, got {causal!r}')
    if window is not None:
        window = _check_int("window", window, 1)
    return window


def visible(q, k, nq: int, nk: int, causal: bool = False, window: int | None = None,
            sparse: Any = None) -> np.ndarray:
    """Element-level mask: whether key ``k`` is visible from query row ``q``.

    ``q`` and ``k`` are integers or integer arrays (broadcast together, e.g. ``q[:, None]`` and
    ``k[None, :]`` give the full ``nq x nk`` matrix). ``sparse`` is None, a
    :class:`BlockSparse` or a mapping with its fields.
    """
    window = _check_mask(causal, window)
    sparse = as_block_sparse(sparse)
    q = np.asarray(q, dtype=np.int64)
    k = np.asarray(k, dtype=np.int64)
    p = q + (nk - nq)
    ok = np.ones(np.broadcast_shapes(q.shape, k.shape), dtype=bool)
    if causal:
        ok &= k <= p
        if window is not None:
            ok &= k > p - window
    elif window is not None:
        ok &= np.abs(k - p) < window
    if sparse is not None:
        layout = block_sparse_layout(nq, nk, sparse.block, sparse.density, sparse.seed)
        ok &= layout[q // sparse.block, k // sparse.block]
    return ok


def _row_intervals(nq: int, nk: int, causal: bool, window: int | None):
    """Visible keys of each row form one interval ``[lo[q], hi[q]]`` (empty when lo > hi);
    both ends are non-decreasing in q, and the empty rows form a prefix."""
    p = np.arange(nq, dtype=np.int64) + (nk - nq)
    lo = np.zeros(nq, dtype=np.int64)
    hi = np.full(nq, nk - 1, dtype=np.int64)
    if causal:
        hi = np.minimum(p, nk - 1)
        if window is not None:
            lo = np.maximum(p - window + 1, 0)
    elif window is not None:
        lo = np.maximum(p - window + 1, 0)
        hi = np.minimum(p + window - 1, nk - 1)
    return lo, hi


def _rect_active(lo, hi, rs, re, cs, ce) -> np.ndarray:
    """For row ranges [rs, re) x column ranges [cs, ce), whether some row q in the range has a
    visible key in the column range, given the per-row intervals [lo, hi].

    Both ends grow by at most 1 from one row to the next, so the intervals of consecutive
    non-empty rows overlap or touch and a row range sees one contiguous key range
    ``[lo[first non-empty row], hi[last row]]``; empty rows form a prefix."""
    nq = lo.shape[0]
    valid = lo <= hi
    first_valid = int(np.argmax(valid)) if valid.any() else nq
    start = np.maximum(rs, first_valid)
    has = start < re
    start = np.minimum(start, nq - 1)
    u_lo, u_hi = lo[start], hi[re - 1]
    return has[:, None] & (cs[None, :] <= u_hi[:, None]) & (ce[None, :] - 1 >= u_lo[:, None])


def _segments(n: int, b: int, s: int | None):
    """Starts/ends of the common refinement of blocks of b and (optionally) blocks of s."""
    starts = np.arange(0, n, b, dtype=np.int64)
    if s is not None:
        starts = np.union1d(starts, np.arange(0, n, s, dtype=np.int64))
    ends = np.append(starts[1:], n)
    return starts, ends


def active_tiles(nq: int, nk: int, block_q: int, block_k: int, causal: bool = False,
                 window: int | None = None, sparse: Any = None) -> np.ndarray:
    """Boolean array of shape ``(Tr, Tc) = (ceil(nq/block_q), ceil(nk/block_k))``: whether tile
    (i, j) holds at least one visible (q, k) pair under the combined mask (AND of causal /
    window and block-sparse, evaluated per element, so a tile is active only if one pair passes
    all masks at once)."""
    nq = _check_int("seq_q", nq, 1)
    nk = _check_int("seq_k", nk, 1)
    block_q = _check_int("block_q", block_q, 1)
    block_k = _check_int("block_k", block_k, 1)
    window = _check_mask(causal, window)
    sparse = as_block_sparse(sparse)
    tr, tc = -(-nq // block_q), -(-nk // block_k)
    if not causal and window is None and sparse is None:
        return np.ones((tr, tc), dtype=bool)
    s = sparse.block if sparse is not None else None
    rs, re = _segments(nq, block_q, s)
    cs, ce = _segments(nk, block_k, s)
    if causal or window is not None:
        lo, hi = _row_intervals(nq, nk, bool(causal), window)
        act = _rect_active(lo, hi, rs, re, cs, ce)
    else:
        act = np.ones((rs.shape[0], cs.shape[0]), dtype=bool)
    if sparse is None:
        return act
    layout = block_sparse_layout(nq, nk, sparse.block, sparse.density, sparse.seed)
    act &= layout[(rs // s)[:, None], (cs // s)[None, :]]
    # Reduce the refined grid to tiles: segments are sorted, so each tile's segments are
    # contiguous and start where the tile index changes.
    ti = rs // block_q
    tj = cs // block_k
    row_first = np.flatnonzero(np.r_[True, ti[1:] != ti[:-1]])
    col_first = np.flatnonzero(np.r_[True, tj[1:] != tj[:-1]])
    act = np.logical_or.reduceat(act, row_first, axis=0)
    return np.logical_or.reduceat(act, col_first, axis=1)


def _kept_in_ranges(layout: np.ndarray, s: int, n: int, owner: np.ndarray, lo: np.ndarray,
                    hi: np.ndarray) -> np.ndarray:
    """For each item x, the number of positions in [lo[x], hi[x]] (0 when lo > hi) that lie in
    blocks kept by ``layout[owner[x]]``; positions run over [0, n) in blocks of s."""
    t = layout.shape[1]
    width = block_sizes(n, s)
    cum = np.zeros((layout.shape[0], t + 1), dtype=np.int64)
    np.cumsum(layout * width[None, :], axis=1, out=cum[:, 1:])
    padded = np.concatenate([layout, np.zeros((layout.shape[0], 1), dtype=bool)], axis=1)

    def upto(x):  # kept positions < x
        blk = x // s
        return cum[owner, blk] + padded[owner, blk] * (x - blk * s)

    lo_c = np.clip(lo, 0, n)
    hi_c = np.clip(hi + 1, 0, n)
    return np.where(hi_c > lo_c, upto(hi_c) - upto(lo_c), 0)


def visible_counts(nq: int, nk: int, causal: bool = False, window: int | None = None,
                   sparse: Any = None) -> tuple[int, int, int]:
    """Exact counts under the combined mask: ``(pairs, rows, keys)`` = the number of visible
    (q, k) pairs, of query rows with at least one visible key, and of keys visible from at
    least one row. Vectorised (O(nq + nk) plus the sparse layout)."""
    nq = _check_int("seq_q", nq, 1)
    nk = _check_int("seq_k", nk, 1)
    window = _check_mask(causal, window)
    sparse = as_block_sparse(sparse)
    lo, hi = _row_intervals(nq, nk, bool(causal), window)
    keys = np.arange(nk, dtype=np.int64)
    # Rows that see key k form an interval too (lo and hi are non-decreasing in q).
    q_first = np.searchsorted(hi, keys, side="left")
    q_last = np.searchsorted(lo, keys, side="right") - 1
    if sparse is None:
        per_row = np.maximum(hi - lo + 1, 0)
        per_key = np.maximum(q_last - q_first + 1, 0)
    else:
        s = sparse.block
        layout = block_sparse_layout(nq, nk, s, sparse.density, sparse.seed)
        rows = np.arange(nq, dtype=np.int64)
        per_row = _kept_in_ranges(layout, s, nk, rows // s, lo, hi)
        per_key = _kept_in_ranges(layout.T.copy(), s, nq, keys // s, q_first, q_last)
    return int(per_row.sum()), int((per_row > 0).sum()), int((per_key > 0).sum())
