"""numba helpers shared by the kernels: tensor classes, the element mask, tile products.

Counters: every kernel receives ``counts`` of shape ``(batch*heads, 2, N_TENSORS)`` (int64,
``[:, 0]`` reads, ``[:, 1]`` writes, in **elements**) and only touches its own (b, h) row,
so the ``prange`` loops never share a counter.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

# Tensor classes at the SRAM boundary. Kind: "e" = workload dtype, "i" = intermediate dtype,
# "f32" = always fp32 (softmax statistics and split/chunk partials), per docs/schedules.md.
# Names as in memsim.bounds.closed_forms.Traffic.tensors: flash1's running row sum and max are
# l and m; chunked's per-chunk summaries are acc (values), ssum (weight sums), smax (maxima).
TENSORS = ("Q", "K", "V", "O", "S", "P", "A", "L", "l", "m", "D", "acc", "ssum", "smax",
           "O_partial", "L_partial")
TENSOR_KIND = {"Q": "e", "K": "e", "V": "e", "O": "e", "S": "i", "P": "i", "A": "i"}
TENSOR_KIND.update({name: "f32" for name in TENSORS if name not in TENSOR_KIND})
N_TENSORS = len(TENSORS)
(T_Q, T_K, T_V, T_O, T_S, T_P, T_A, T_L, T_LSUM, T_M, T_D, T_ACC, T_SSUM, T_SMAX, T_OPART,
 T_LPART) = range(N_TENSORS)
READ, WRITE = 0, 1


@njit(cache=True)
def visible(qrow, kcol, off, causal, window, layout, sblock):
    """Key ``kcol`` visible from query row ``qrow`` (docs/schedules.md, Masks); ``off`` is
    ``nk - nq`` (bottom-right alignment), ``window`` 0 means none, ``layout`` is the block-sparse
    layout with block ``sblock`` (a 1x1 True layout with a huge block when there is none)."""
    p = qrow + off
    if causal:
        if kcol > p:
            return False
        if window > 0 and kcol <= p - window:
            return False
    elif window > 0 and abs(kcol - p) >= window:
        return False
    return layout[qrow // sblock, kcol // sblock]


@njit(cache=True)
def nan_max(a, b):
    """max(a, b) that propagates NaN: a NaN score must reach the output, not be masked out as
    if it were -inf (a plain ``if s > m`` comparison would silently skip it)."""
    if a != a:
        return a
    if b > a or b != b:
        return b
    return a


@njit(cache=True)
def tile_activity(nq, nk, br, bc, causal, window, layout, sblock):
    """Boolean (ceil(nq/br), ceil(nk/bc)): tile (i, j) holds at least one visible pair.
    Evaluated element by element from :func:`visible` (independent of memsim.workloads.masks'
    interval arithmetic; a test compares the two)."""
    off = nk - nq
    tr = (nq + br - 1) // br
    tc = (nk + bc - 1) // bc
    act = np.zeros((tr, tc), dtype=np.bool_)
    for i in range(tr):
        for j in range(tc):
            found = False
            for r in range(i * br, min(nq, (i + 1) * br)):
                for c in range(j * bc, min(nk, (j + 1) * bc)):
                    if visible(r, c, off, causal, window, layout, sblock):
                        found = True
                        break
                if found:
                    break
            act[i, j] = found
    return act


@njit(cache=True)
def masked_scores(qh, kh, r0, nr, c0, nc, scale, off, causal, window, layout, sblock, s, kt):
    """s[:nr, :nc] = scale * Q[r0:r0+nr] K[c0:c0+nc]^T, with -inf where the mask hides a key.

    Accumulates in the inputs' precision (float32 kernels multiply and add in float32), each
    score summed over t = 0 .. d-1 in order. K_j is first transposed into ``kt`` (d, >= nc), an
    on-chip copy, so that the inner loop runs over keys and vectorises without reordering sums.
    """
    d = qh.shape[1]
    for t in range(d):
        for c in range(nc):
            kt[t, c] = kh[c0 + c, t]
    for r in range(nr):
        qr = qh[r0 + r]
        for c in range(nc):
            s[r, c] = qr[0] * kt[0, c]
        for t in range(1, d):
            qv = qr[t]
            for c in range(nc):
                s[r, c] += qv * kt[t, c]
        for c in range(nc):
            s[r, c] *= scale
    if causal or window > 0 or layout.size > 1:
        for r in range(nr):
            for c in range(nc):
                if not visible(r0 + r, c0 + c, off, causal, window, layout, sblock):
                    s[r, c] = -math.inf


@njit(cache=True)
def online_update(s, nr, nc, vh, c0, m, l, acc):
    """FlashAttention-2 step for one tile: s[:nr, :nc] holds masked scores (overwritten by P~),
    m/l/acc the running max, sum and unnormalised output of the rows. Rows that have seen no
    visible key yet (max still -inf) are left untouched, so no exp(-inf + inf) is formed."""
    d = vh.shape[1]
    for r in range(nr):
        mx = m[r]
        for c in range(nc):
            mx = nan_max(mx, s[r, c])
        if mx == -math.inf:
            continue
        alpha = math.exp(m[r] - mx)  # exp(-inf) = 0 on the first visible tile
        rowsum = l[r] * 0  # zero in the working precision (l is finite)
        for c in range(nc):
            p = math.exp(s[r, c] - mx)
            s[r, c] = p
            rowsum += p
        l[r] = l[r] * alpha + rowsum
        for t in range(d):
            acc[r, t] *= alpha
        for c in range(nc):
            p = s[r, c]
            if p != 0:
                for t in range(d):
                    acc[r, t] += p * vh[c0 + c, t]
        m[r] = mx
