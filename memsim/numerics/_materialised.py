"""Kernels of the schedules that store intermediates or partial summaries in memory:
standard (S and P), square_tiling (A = exp(QK^T) and D) and chunked (per-chunk summaries).

Conventions as in ``_flash.py`` (one (batch, head) per call). ``iround`` is the rounding code
of the intermediate dtype (``rounding.ROUND_CODES``): S, P and A are rounded when they are
stored, as a kernel storing them in bf16/fp16 would.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._tiles import (READ, WRITE, T_A, T_ACC, T_D, T_K, T_O, T_P, T_Q, T_S, T_SMAX, T_SSUM,
                     T_V, masked_scores, nan_max, online_update, visible)
from .rounding import round_scalar


@njit(cache=True)
def standard_head(qh, kh, vh, scale, br, bc, causal, window, layout, sblock, iround, oh, cnt):
    """Algorithm 0 in three passes over every tile (masks are applied by the softmax, not by
    skipping): S = scale QK^T stored; P = softmax(S) per row block; O = PV."""
    nq, d = qh.shape
    nk = kh.shape[0]
    off = nk - nq
    tr = (nq + br - 1) // br
    tc = (nk + bc - 1) // bc
    smat = np.empty((nq, nk), dtype=qh.dtype)  # S, then P, "in memory"
    s = np.empty((br, bc), dtype=qh.dtype)
    kt = np.empty((d, bc), dtype=qh.dtype)
    no_layout = np.ones((1, 1), dtype=np.bool_)
    for i in range(tr):  # 1. S = Q K^T, every tile, unmasked
        r0 = i * br
        nr = min(br, nq - r0)
        for j in range(tc):
            c0 = j * bc
            nc = min(bc, nk - c0)
            cnt[READ, T_Q] += nr * d
            cnt[READ, T_K] += nc * d
            # Unmasked scores: the mask is the softmax's business in Algorithm 0.
            masked_scores(qh, kh, r0, nr, c0, nc, scale, off, False, 0, no_layout, sblock,
                          s, kt)
            for r in range(nr):
                for c in range(nc):
                    smat[r0 + r, c0 + c] = round_scalar(s[r, c], iround)
            cnt[WRITE, T_S] += nr * nc
    for i in range(tr):  # 2. P = softmax(S) with the mask, per row block
        r0 = i * br
        nr = min(br, nq - r0)
        cnt[READ, T_S] += nr * nk
        for r in range(r0, r0 + nr):
            mx = -math.inf
            for c in range(nk):
                if visible(r, c, off, causal, window, layout, sblock):
                    mx = nan_max(mx, smat[r, c])
            total = smat[r, 0] * 0
            for c in range(nk):
                if mx > -math.inf and visible(r, c, off, causal, window, layout, sblock):
                    p = math.exp(smat[r, c] - mx)
                else:
                    p = smat[r, c] * 0  # masked key, or a fully masked row: P = 0
                smat[r, c] = p
                total += p
            inv = 1 / total if total != 0 else total
            for c in range(nk):
                smat[r, c] = round_scalar(smat[r, c] * inv, iround)
        cnt[WRITE, T_P] += nr * nk
    for i in range(tr):  # 3. O = P V
        r0 = i * br
        nr = min(br, nq - r0)
        oh[r0:r0 + nr, :] = 0
        for j in range(tc):
            c0 = j * bc
            nc = min(bc, nk - c0)
            cnt[READ, T_P] += nr * nc
            cnt[READ, T_V] += nc * d
            for r in range(r0, r0 + nr):
                for c in range(c0, c0 + nc):
                    p = smat[r, c]
                    if p != 0:
                        for t in range(d):
                            oh[r, t] += p * vh[c, t]
        cnt[WRITE, T_O] += nr * d


@njit(cache=True)
def square_tiling_head(qh, kh, vh, scale, bs, causal, window, layout, sblock, iround, cr, act,
                       oh, lh, cnt):
    """Saha & Ye's SquareTilingAttention: B x B tiles, the head dimension tiled by B as well.
    Phase 1 stores A_ij = exp(S_ij - c_r) for active tiles and the row sums D_i; phase 2 reads
    D_i and, per d-block, every active A_ik with V[k, l] to form O[i, l] = D^-1 A V.

    ``cr[r]`` = c_r is a per-row constant that cancels in D^-1 A (see
    ``api._square_offsets``); it is computed outside the schedule and moves no tile data."""
    nq, d = qh.shape
    nk = kh.shape[0]
    off = nk - nq
    tr, tc = act.shape
    td = (d + bs - 1) // bs
    amat = np.zeros((nq, nk), dtype=qh.dtype)  # A "in memory"; only active tiles written
    dsum = np.zeros(nq, dtype=qh.dtype)
    st = np.empty((bs, bs), dtype=qh.dtype)
    for i in range(tr):  # phase 1
        r0 = i * bs
        nr = min(bs, nq - r0)
        for j in range(tc):
            if not act[i, j]:
                continue
            c0 = j * bs
            nc = min(bs, nk - c0)
            st[:nr, :nc] = 0
            for lb in range(td):
                t0 = lb * bs
                nt = min(bs, d - t0)
                cnt[READ, T_Q] += nr * nt
                cnt[READ, T_K] += nt * nc
                for r in range(nr):
                    for c in range(nc):
                        acc = st[r, c]
                        for t in range(t0, t0 + nt):
                            acc += qh[r0 + r, t] * kh[c0 + c, t]
                        st[r, c] = acc
            for r in range(nr):
                for c in range(nc):
                    if visible(r0 + r, c0 + c, off, causal, window, layout, sblock):
                        a = math.exp(st[r, c] * scale - cr[r0 + r])
                        dsum[r0 + r] += a
                        amat[r0 + r, c0 + c] = round_scalar(a, iround)
            cnt[WRITE, T_A] += nr * nc
        cnt[WRITE, T_D] += nr
    for i in range(tr):  # phase 2
        r0 = i * bs
        nr = min(bs, nq - r0)
        cnt[READ, T_D] += nr
        for lb in range(td):
            t0 = lb * bs
            nt = min(bs, d - t0)
            oh[r0:r0 + nr, t0:t0 + nt] = 0
            for kb in range(tc):
                if not act[i, kb]:
                    continue
                c0 = kb * bs
                nc = min(bs, nk - c0)
                cnt[READ, T_A] += nr * nc
                cnt[READ, T_V] += nc * nt
                for r in range(nr):
                    for c in range(nc):
                        a = amat[r0 + r, c0 + c]
                        if a != 0:
                            for t in range(t0, t0 + nt):
                                oh[r0 + r, t] += a * vh[c0 + c, t]
            for r in range(nr):
                if dsum[r0 + r] != 0:
                    inv = 1 / dsum[r0 + r]
                    for t in range(t0, t0 + nt):
                        oh[r0 + r, t] *= inv
            cnt[WRITE, T_O] += nr * nt
    for r in range(nq):
        lh[r] = cr[r] + math.log(dsum[r]) if dsum[r] != 0 else -math.inf


@njit(cache=True)
def chunked_head(qh, kh, vh, scale, br, bc, causal, window, layout, sblock, act, oh, lh, cnt):
    """Rabe & Staats: per query chunk i, each active key chunk j is summarised independently
    (unnormalised values, weight sums, maxima: stored as fp32), then the combine pass reads the
    summaries back, rescales them by exp(m_j - max m) and writes O_i."""
    nq, d = qh.shape
    nk = kh.shape[0]
    off = nk - nq
    tr, tc = act.shape
    s = np.empty((br, bc), dtype=qh.dtype)
    kt = np.empty((d, bc), dtype=qh.dtype)  # K_j transposed on chip
    vals = np.empty((tc, br, d), dtype=qh.dtype)
    wsum = np.empty((tc, br), dtype=qh.dtype)
    mx = np.empty((tc, br), dtype=qh.dtype)
    for i in range(tr):
        r0 = i * br
        nr = min(br, nq - r0)
        for j in range(tc):
            if not act[i, j]:
                continue
            c0 = j * bc
            nc = min(bc, nk - c0)
            cnt[READ, T_Q] += nr * d
            cnt[READ, T_K] += nc * d
            cnt[READ, T_V] += nc * d
            masked_scores(qh, kh, r0, nr, c0, nc, scale, off, causal, window, layout,
                          sblock, s, kt)
            # summarize_chunk = one online-softmax step from an empty state.
            mx[j, :] = -math.inf
            wsum[j, :] = 0
            vals[j, :, :] = 0
            online_update(s, nr, nc, vh, c0, mx[j], wsum[j], vals[j])
            cnt[WRITE, T_ACC] += nr * d
            cnt[WRITE, T_SSUM] += nr
            cnt[WRITE, T_SMAX] += nr
        # Combine pass for chunk i.
        for j in range(tc):
            if act[i, j]:
                cnt[READ, T_ACC] += nr * d
                cnt[READ, T_SSUM] += nr
                cnt[READ, T_SMAX] += nr
        for r in range(nr):
            gmax = -math.inf
            for j in range(tc):
                if act[i, j]:
                    gmax = nan_max(gmax, mx[j, r])
            oh[r0 + r, :] = 0
            if gmax == -math.inf:
                lh[r0 + r] = -math.inf
                continue
            total = gmax * 0
            for j in range(tc):
                if act[i, j] and mx[j, r] > -math.inf:
                    f = math.exp(mx[j, r] - gmax)
                    total += f * wsum[j, r]
                    for t in range(d):
                        oh[r0 + r, t] += f * vals[j, r, t]
            for t in range(d):
                oh[r0 + r, t] /= total
            lh[r0 + r] = gmax + math.log(total)
        cnt[WRITE, T_O] += nr * d
