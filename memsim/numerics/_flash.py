"""Kernels of the online-softmax schedules: flash1, flash2, flash_decoding.

Each ``*_head`` function runs one (batch, query head) with the loop order and block sizes of
docs/schedules.md on real numbers, and adds to ``cnt`` (2, N_TENSORS) the elements it moves
across the SRAM boundary. Arrays: qh (Nq, d), kh and vh (Nk, d) of the head's K/V head, in the
working precision (float32 or float64); ``act`` is the tile-activity grid of the schedule's own
tiling; oh (Nq, d) and lh (Nq,) receive O and L. Fully masked rows give O = 0 and L = -inf.
``_driver.run_heads`` runs the heads in parallel.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._tiles import (READ, WRITE, T_K, T_L, T_LPART, T_LSUM, T_M, T_O, T_OPART, T_Q, T_V,
                     masked_scores, nan_max, online_update)


@njit(cache=True)
def flash2_head(qh, kh, vh, scale, br, bc, causal, window, layout, sblock, act, oh, lh, cnt):
    """FlashAttention-2 forward: per (b, h), outer loop over row blocks i (Q_i read once), inner
    loop over active key blocks j; O_i and L_i written once at the end."""
    nq, d = qh.shape
    nk = kh.shape[0]
    off = nk - nq
    tr, tc = act.shape
    s = np.empty((br, bc), dtype=qh.dtype)
    kt = np.empty((d, bc), dtype=qh.dtype)  # K_j transposed on chip
    acc = np.empty((br, d), dtype=qh.dtype)
    m = np.empty(br, dtype=qh.dtype)
    l = np.empty(br, dtype=qh.dtype)
    for i in range(tr):
        r0 = i * br
        nr = min(br, nq - r0)
        cnt[READ, T_Q] += nr * d
        m[:] = -math.inf
        l[:] = 0
        acc[:, :] = 0
        for j in range(tc):
            if not act[i, j]:
                continue
            c0 = j * bc
            nc = min(bc, nk - c0)
            cnt[READ, T_K] += nc * d
            cnt[READ, T_V] += nc * d
            masked_scores(qh, kh, r0, nr, c0, nc, scale, off, causal, window, layout,
                          sblock, s, kt)
            online_update(s, nr, nc, vh, c0, m, l, acc)
        for r in range(nr):
            if l[r] != 0:  # l >= 0; NaN takes this branch and propagates
                inv = 1 / l[r]
                for t in range(d):
                    oh[r0 + r, t] = acc[r, t] * inv
                lh[r0 + r] = m[r] + math.log(l[r])
            else:
                oh[r0 + r, :] = 0
                lh[r0 + r] = -math.inf
        cnt[WRITE, T_O] += nr * d
        cnt[WRITE, T_L] += nr


@njit(cache=True)
def flash1_head(qh, kh, vh, scale, br, bc, causal, window, layout, sblock, act, oh, lh, mh,
                cnt):
    """FlashAttention (Algorithm 1): O, l, m initialised in memory; outer loop over key blocks j,
    inner loop over row blocks i; each active tile reads Q_i, O_i, l_i, m_i and writes O_i, l_i,
    m_i back. ``oh``, ``lh`` (l) and ``mh`` (m) play the role of the arrays in HBM."""
    nq, d = qh.shape
    nk = kh.shape[0]
    off = nk - nq
    tr, tc = act.shape
    s = np.empty((br, bc), dtype=qh.dtype)
    kt = np.empty((d, bc), dtype=qh.dtype)  # K_j transposed on chip
    pv = np.empty((br, d), dtype=qh.dtype)
    oh[:, :] = 0
    lh[:] = 0
    mh[:] = -math.inf
    cnt[WRITE, T_O] += nq * d
    cnt[WRITE, T_LSUM] += nq
    cnt[WRITE, T_M] += nq
    for j in range(tc):
        if not act[:, j].any():
            continue
        c0 = j * bc
        nc = min(bc, nk - c0)
        cnt[READ, T_K] += nc * d
        cnt[READ, T_V] += nc * d
        for i in range(tr):
            if not act[i, j]:
                continue
            r0 = i * br
            nr = min(br, nq - r0)
            cnt[READ, T_Q] += nr * d
            cnt[READ, T_O] += nr * d
            cnt[READ, T_LSUM] += nr
            cnt[READ, T_M] += nr
            masked_scores(qh, kh, r0, nr, c0, nc, scale, off, causal, window, layout,
                          sblock, s, kt)
            for r in range(nr):
                mt = -math.inf  # m~_ij = rowmax(S_ij)
                for c in range(nc):
                    mt = nan_max(mt, s[r, c])
                if mt == -math.inf:
                    continue  # nothing visible in this row of the tile: O, l, m unchanged
                lt = lh[r0 + r] * 0
                for c in range(nc):
                    p = math.exp(s[r, c] - mt)  # P~_ij
                    s[r, c] = p
                    lt += p
                pv[r, :] = 0
                for c in range(nc):
                    p = s[r, c]
                    if p != 0:
                        for t in range(d):
                            pv[r, t] += p * vh[c0 + c, t]
                mi = mh[r0 + r]
                mnew = nan_max(mi, mt)
                a_old = math.exp(mi - mnew)
                a_new = math.exp(mt - mnew)
                lnew = a_old * lh[r0 + r] + a_new * lt
                # O_i <- diag(l_new)^-1 (diag(l_i) e^{m_i - m_new} O_i + e^{m~ - m_new} P~ V_j)
                c_old = lh[r0 + r] * a_old / lnew
                c_new = a_new / lnew
                for t in range(d):
                    oh[r0 + r, t] = c_old * oh[r0 + r, t] + c_new * pv[r, t]
                lh[r0 + r] = lnew
                mh[r0 + r] = mnew
            cnt[WRITE, T_O] += nr * d
            cnt[WRITE, T_LSUM] += nr
            cnt[WRITE, T_M] += nr


@njit(cache=True)
def flash_decoding_head(qh, kh, vh, scale, bc, splits, causal, window, layout, sblock, act, oh,
                        lh, cnt):
    """Flash-Decoding (split-KV). ``act`` has one row (all Nq queries form one block). Split s
    covers key blocks [s*ceil(Tc/S), (s+1)*ceil(Tc/S)); each split with an active block reads
    Q, runs the online softmax over its active blocks and writes a partial O and L (fp32); the
    combine reads every written partial, rescales by exp(L_s - max L) and writes O."""
    nq, d = qh.shape
    nk = kh.shape[0]
    off = nk - nq
    tc = act.shape[1]
    per = (tc + splits - 1) // splits
    s = np.empty((nq, bc), dtype=qh.dtype)
    kt = np.empty((d, bc), dtype=qh.dtype)  # K_j transposed on chip
    acc = np.empty((nq, d), dtype=qh.dtype)
    m = np.empty(nq, dtype=qh.dtype)
    l = np.empty(nq, dtype=qh.dtype)
    part_o = np.zeros((splits, nq, d), dtype=qh.dtype)
    part_l = np.full((splits, nq), -math.inf, dtype=qh.dtype)
    written = np.zeros(splits, dtype=np.bool_)
    for sp in range(splits):
        j_end = min((sp + 1) * per, tc)
        if not act[0, sp * per:j_end].any():
            continue
        cnt[READ, T_Q] += nq * d
        m[:] = -math.inf
        l[:] = 0
        acc[:, :] = 0
        for j in range(sp * per, j_end):
            if not act[0, j]:
                continue
            c0 = j * bc
            nc = min(bc, nk - c0)
            cnt[READ, T_K] += nc * d
            cnt[READ, T_V] += nc * d
            masked_scores(qh, kh, 0, nq, c0, nc, scale, off, causal, window, layout,
                          sblock, s, kt)
            online_update(s, nq, nc, vh, c0, m, l, acc)
        for r in range(nq):
            if l[r] != 0:  # l >= 0; NaN takes this branch and propagates
                for t in range(d):
                    part_o[sp, r, t] = acc[r, t] / l[r]
                part_l[sp, r] = m[r] + math.log(l[r])
        written[sp] = True
        cnt[WRITE, T_OPART] += nq * d
        cnt[WRITE, T_LPART] += nq
    # Combine kernel.
    for sp in range(splits):
        if written[sp]:
            cnt[READ, T_OPART] += nq * d
            cnt[READ, T_LPART] += nq
    for r in range(nq):
        lmax = -math.inf
        for sp in range(splits):
            lmax = nan_max(lmax, part_l[sp, r])
        oh[r, :] = 0
        if lmax == -math.inf:
            lh[r] = -math.inf
            continue
        wsum = lmax * 0
        for sp in range(splits):
            w = math.exp(part_l[sp, r] - lmax)
            wsum += w
            for t in range(d):
                oh[r, t] += w * part_o[sp, r, t]
        for t in range(d):
            oh[r, t] /= wsum
        lh[r] = lmax + math.log(wsum)
    cnt[WRITE, T_O] += nq * d
