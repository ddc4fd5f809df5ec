"""Block mode: the tile-level time model as a step-level event simulation in numba.

The tile level (:func:`.gpu.run_tile`) runs one simpy process per SM slot and one timeout per
step. This module executes the same model without simpy: the slot processes become a state
machine resumed from an event queue ordered by (time, order of scheduling), which is simpy's
order for timeouts of equal priority (a sorted ring while slots advance nearly in lockstep,
so a new event usually goes last; a binary heap once insertions get costly); the FIFO "free at" channels, the stage pipeline, the
in-order compute units, dispatch in grid order, launch overhead and the end-of-kernel drain
are the same statements over the same floats. Event times are formed as simpy forms them
(``env.now + delay``), so the kernel times equal the tile level's, in practice to the last
bit (tests/engine compare them at 1e-9).

Per-step loads, stores and compute seconds are recomputed from the packed program when a
block starts (into a per-slot buffer), and the HBM bytes of a step come from the traffic
pass's sparse list of steps that miss or write back, so no per-step array of the whole
program is kept (33.6 M steps at N = 131072).
"""
from __future__ import annotations

import numba
import numpy as np

from .gpu import Machine, _channel_busy, _heap_push, occupancy

__all__ = ["run_step"]

_F_UNIT = 4     # fields of a step in the slot buffer: load, store, hbm, wb, then units


@numba.njit(cache=True, inline="always")
def _sift_down(ht, hs, hi, size, t, sq, slot):
    """Put (t, sq, slot) at the root of the heap (replacing it) and restore the order:
    heapreplace, one sift for a pop followed by a push. Order: time, then scheduling order."""
    x = 0
    while True:
        c = 2 * x + 1
        if c >= size:
            break
        r = c + 1
        if r < size and (ht[r] < ht[c] or (ht[r] == ht[c] and hs[r] < hs[c])):
            c = r
        if t < ht[c] or (t == ht[c] and sq < hs[c]):
            break
        ht[x] = ht[c]
        hs[x] = hs[c]
        hi[x] = hi[c]
        x = c
    ht[x] = t
    hs[x] = sq
    hi[x] = slot


@numba.njit(cache=True, inline="always")
def _issue_load(lb, hbb, now, sm, l2r_free, l2r_rate, sm_in_free, sm_in_bw, hbm_free, hbm_rate,
                hbm_lat, l2_lat):
    """Issue one step's loads at ``now`` (``lb`` bytes through L2, ``hbb`` of them missing to
    HBM) on the FIFO "free at" channels, as the tile level does; returns the arrival time and
    the new free times of the L2 read and HBM channels (the SM's input channel is updated in
    ``sm_in_free``)."""
    if lb == 0 and hbb == 0:
        return now, l2r_free, hbm_free
    done = (l2r_free if l2r_free > now else now) + lb / l2r_rate
    l2r_free = done
    si = sm_in_free[sm]
    e2 = (si if si > now else now) + lb / sm_in_bw
    sm_in_free[sm] = e2
    if e2 > done:
        done = e2
    if hbb:
        hbm_free = (hbm_free if hbm_free > now else now) + hbb / hbm_rate
        e3 = hbm_free + hbm_lat
        if e3 > done:
            done = e3
    return done + l2_lat, l2r_free, hbm_free


@numba.njit(cache=True, inline="always")
def _issue_store(sb, wbb, now, sm, l2w_free, l2w_rate, sm_out_free, sm_out_bw, hbm_free,
                 hbm_rate, l2_lat):
    """Issue one step's store at ``now`` (``sb`` bytes to L2, ``wbb`` written back to HBM) on
    the FIFO channels; returns when the store has drained (``now`` if nothing is stored) and
    the new free times of the L2 write and HBM channels (the SM's output channel is updated in
    ``sm_out_free``)."""
    done = now
    if sb:
        l2w_free = (l2w_free if l2w_free > now else now) + sb / l2w_rate
        done = l2w_free
        so = sm_out_free[sm]
        e2 = (so if so > now else now) + sb / sm_out_bw
        sm_out_free[sm] = e2
        if e2 > done:
            done = e2
        done += l2_lat
    if wbb:
        hbm_free = (hbm_free if hbm_free > now else now) + wbb / hbm_rate
    return done, l2w_free, hbm_free


@numba.njit(cache=True, inline="always")
def _q_insert(qt, qs, qi, head, count, mask, t, sq, slot):
    """Insert (t, sq, slot) into the sorted ring ``q*[head .. head+count)``, scanning from
    the tail; ``sq`` is larger than every queued one, so it goes after equal times. Returns
    the number of entries moved (0 when it is the latest, the usual case: slots advance
    nearly in lockstep, so a step's next event is after all others)."""
    pos = head + count
    j = pos
    while j > head:
        pj = (j - 1) & mask
        if qt[pj] <= t:
            break
        jm = j & mask
        qt[jm] = qt[pj]
        qs[jm] = qs[pj]
        qi[jm] = qi[pj]
        j -= 1
    jm = j & mask
    qt[jm] = t
    qs[jm] = sq
    qi[jm] = slot
    return pos - j


@numba.njit(cache=True, inline="always")
def _fill(b, blk_seg, seg_idx_off, seg_idx_len, seg_acc, seg_nload, seg_op, seg_key,
          acc_coef, acc_soff, op_cls, op_coef, op_soff, idx_pool, size_pool, cls_unit,
          cls_rate, buf, row):
    """Per-step values of block ``b`` into ``buf[row, t]``: load bytes, store bytes, HBM
    read and write-back bytes (zeroed here, set from the sparse list), then each unit's
    seconds; summed in the traffic pass's order, so the floats are the same. Where all
    sizes of a segment come from one size array (``seg_key`` >= 0; -1: no sizes), a step
    whose size equals the previous step's has the previous step's values: copied."""
    t = 0
    nf = buf.shape[2]
    for s in range(blk_seg[b], blk_seg[b + 1]):
        off = seg_idx_off[s]
        a0 = seg_acc[s]
        a1 = seg_acc[s + 1]
        nl = seg_nload[s]
        n = seg_idx_len[s]
        key = seg_key[s]
        prev = -1.0
        for p in range(n):
            j = idx_pool[off + p]
            if key != -2:
                v = size_pool[key + j] if key >= 0 else 0.0
                if p > 0 and v == prev:
                    for f in range(nf):
                        buf[row, t, f] = buf[row, t - 1, f]
                    t += 1
                    continue
                prev = v
            lsum = 0.0
            ssum = 0.0
            for a in range(a0, a1):
                nbytes = acc_coef[a]
                if acc_soff[a] >= 0:
                    nbytes *= size_pool[acc_soff[a] + j]
                if a - a0 >= nl:
                    ssum += nbytes
                else:
                    lsum += nbytes
            buf[row, t, 0] = lsum
            buf[row, t, 1] = ssum
            for f in range(2, nf):
                buf[row, t, f] = 0.0
            for o in range(seg_op[s], seg_op[s + 1]):
                amount = op_coef[o]
                if op_soff[o] >= 0:
                    amount *= size_pool[op_soff[o] + j]
                c = op_cls[o]
                buf[row, t, _F_UNIT + cls_unit[c]] += amount / cls_rate[c]
            t += 1


@numba.njit(cache=True)
def _seg_key(seg_acc, seg_op, acc_soff, op_soff):
    """Per segment: the one size array (offset) all its transfers and ops scale by, -1 if
    none does, -2 if they use different ones."""
    ns = seg_acc.shape[0] - 1
    out = np.full(ns, -1, np.int64)
    for s in range(ns):
        for a in range(seg_acc[s], seg_acc[s + 1]):
            so = acc_soff[a]
            if so >= 0 and out[s] != -2:
                out[s] = so if out[s] == -1 or out[s] == so else -2
        for o in range(seg_op[s], seg_op[s + 1]):
            so = op_soff[o]
            if so >= 0 and out[s] != -2:
                out[s] = so if out[s] == -1 or out[s] == so else -2
    return out


@numba.njit(cache=True)
def _step_sim(kernel_blk, k_occ, k_stages, k_flush, k_sram, blk_step, blk_sp, sp_g, sp_hb,
              sp_wb, blk_seg, seg_idx_off, seg_idx_len, seg_acc, seg_nload, seg_op, acc_coef,
              acc_soff, op_cls, op_coef, op_soff, idx_pool, size_pool, cls_unit, cls_rate,
              n_units, sms, launch, l2r_rate, l2w_rate, hbm_rate, l2_lat, hbm_lat, sm_in_bw,
              sm_out_bw, max_moves):
    nk = kernel_blk.shape[0] - 1
    seg_key = _seg_key(seg_acc, seg_op, acc_soff, op_soff)
    starts = np.zeros(nk)
    ends = np.zeros(nk)
    unit_free = np.zeros((sms, n_units))
    unit_busy = np.zeros(n_units)
    sm_in_free = np.zeros(sms)
    sm_out_free = np.zeros(sms)
    sram_used = np.zeros(sms)
    l2r_free = 0.0
    l2w_free = 0.0
    hbm_free = 0.0
    peak = 0.0
    events = 0
    env = 0.0
    for k in range(nk):
        env = env + launch                  # the driver's launch timeout
        starts[k] = env
        b0 = kernel_blk[k]
        grid = kernel_blk[k + 1] - b0
        slots = min(grid, k_occ[k] * sms)
        S = k_stages[k]
        sram = k_sram[k]
        max_n = 1
        for b in range(b0, b0 + grid):
            nb = blk_step[b + 1] - blk_step[b]
            if nb > max_n:
                max_n = nb
        ns = max(1, slots)
        buf = np.empty((ns, max_n, _F_UNIT + n_units))    # one step's values together
        ring = np.empty((ns, S))
        r_head = np.zeros(ns, np.int64)
        r_cnt = np.zeros(ns, np.int64)
        nst = np.zeros(ns, np.int64)
        tt = np.zeros(ns, np.int64)
        phase = np.zeros(ns, np.int64)         # 1: waiting in the step loop, 2: final store
        pend = np.zeros(ns)                    # local "now" after the pending timeout
        ht = np.empty(ns)
        hs = np.empty(ns, np.int64)
        hi = np.empty(ns, np.int64)
        size = 0
        # The event queue: a sorted ring while insertions stay cheap (lockstep slots), else
        # a binary heap (a sorted array is a valid heap, so switching keeps the order).
        cap = 1
        while cap < ns:
            cap *= 2
        mask = cap - 1
        qt = np.empty(cap)
        qs = np.empty(cap, np.int64)
        qi = np.empty(cap, np.int64)
        q_head = 0
        q_cnt = 0
        sorted_q = max_moves >= 0
        moved = 0
        inserts = 0
        seq = 0
        nxt = 0
        it = 0
        while True:
            # resume slot `slot` at simulated time `T` (simpy's env.now)
            from_heap = it >= slots
            if not from_heap:                  # process start, in creation order
                slot = it
                T = env
                it += 1
            elif sorted_q:
                if q_cnt == 0:
                    break
                T = qt[q_head]                 # the head stays until the slot is done
                slot = qi[q_head]
                env = T
            else:
                if size == 0:
                    break
                T = ht[0]                      # the root stays until the slot is done:
                slot = hi[0]                   # its next event replaces it (heapreplace)
                env = T
            sm = slot % sms
            ph = phase[slot]
            if ph == 2:                        # the block's final store has drained
                sram_used[sm] -= sram
            now = pend[slot]
            t = tt[slot] + 1
            yielded = False
            new_t = 0.0
            while True:                        # the slot process's body
                if ph != 1:                    # take the next block of the grid
                    if nxt >= grid:
                        break                  # the slot process ends
                    b = b0 + nxt
                    nxt += 1
                    sram_used[sm] += sram
                    if sram_used[sm] > peak:
                        peak = sram_used[sm]
                    now = T
                    n = blk_step[b + 1] - blk_step[b]
                    nst[slot] = n
                    _fill(b, blk_seg, seg_idx_off, seg_idx_len, seg_acc, seg_nload, seg_op,
                          seg_key, acc_coef, acc_soff, op_cls, op_coef, op_soff, idx_pool, size_pool,
                          cls_unit, cls_rate, buf, slot)
                    g0 = blk_step[b]
                    q = blk_sp[b]
                    while q < sp_g.shape[0] and sp_g[q] < g0 + n:
                        buf[slot, sp_g[q] - g0, 2] = sp_hb[q]
                        buf[slot, sp_g[q] - g0, 3] = sp_wb[q]
                        q += 1
                    r_head[slot] = 0
                    r_cnt[slot] = 0
                    lo = 0
                    hi_ = min(S - 1, n)
                    t = 0
                else:
                    n = nst[slot]
                    lo = 0
                    hi_ = 0
                ph = 0
                while True:
                    for x in range(lo, hi_):   # loads issued now, queued in the ring
                        done, l2r_free, hbm_free = _issue_load(
                            buf[slot, x, 0], buf[slot, x, 2], now, sm, l2r_free, l2r_rate,
                            sm_in_free, sm_in_bw, hbm_free, hbm_rate, hbm_lat, l2_lat)
                        w = r_head[slot] + r_cnt[slot]
                        ring[slot, w - S if w >= S else w] = done
                        r_cnt[slot] += 1
                    if t >= n:
                        break
                    if t:                      # the previous step's store
                        _, l2w_free, hbm_free = _issue_store(
                            buf[slot, t - 1, 1], buf[slot, t - 1, 3], now, sm, l2w_free,
                            l2w_rate, sm_out_free, sm_out_bw, hbm_free, hbm_rate, l2_lat)
                    if t + S - 1 < n:          # the load S-1 steps ahead
                        x = t + S - 1
                        done, l2r_free, hbm_free = _issue_load(
                            buf[slot, x, 0], buf[slot, x, 2], now, sm, l2r_free, l2r_rate,
                            sm_in_free, sm_in_bw, hbm_free, hbm_rate, hbm_lat, l2_lat)
                        w = r_head[slot] + r_cnt[slot]
                        ring[slot, w - S if w >= S else w] = done
                        r_cnt[slot] += 1
                    # compute of step t: its loads have arrived and the units are free
                    start = ring[slot, r_head[slot]]
                    r_head[slot] = r_head[slot] + 1 if r_head[slot] + 1 < S else 0
                    r_cnt[slot] -= 1
                    if start < now:
                        start = now
                    for u in range(n_units):
                        sec = buf[slot, t, _F_UNIT + u]
                        if sec:
                            if unit_free[sm, u] > start:
                                start = unit_free[sm, u]
                            start += sec
                            unit_free[sm, u] = start
                            unit_busy[u] += sec
                    if start > now:
                        events += 1
                        new_t = T + (start - now)
                        pend[slot] = start
                        tt[slot] = t
                        phase[slot] = 1
                        yielded = True
                        break
                    t += 1
                    lo = 0
                    hi_ = 0
                if yielded:
                    break
                # all steps done: the last step's store; the block ends when it has drained
                done = now
                if n:
                    done, l2w_free, hbm_free = _issue_store(
                        buf[slot, n - 1, 1], buf[slot, n - 1, 3], now, sm, l2w_free, l2w_rate,
                        sm_out_free, sm_out_bw, hbm_free, hbm_rate, l2_lat)
                if done > now:
                    events += 1
                    new_t = T + (done - now)
                    phase[slot] = 2
                    yielded = True
                    break
                sram_used[sm] -= sram
            if sorted_q:
                if from_heap:                  # pop the event just served
                    q_head = (q_head + 1) & mask
                    q_cnt -= 1
                if yielded:                    # the slot's next event
                    moved += _q_insert(qt, qs, qi, q_head, q_cnt, mask, new_t, seq, slot)
                    q_cnt += 1
                    seq += 1
                    inserts += 1
                    if moved > max_moves * inserts + 4096:     # not lockstep: use the heap
                        for x in range(q_cnt):
                            y = (q_head + x) & mask
                            ht[x] = qt[y]
                            hs[x] = qs[y]
                            hi[x] = qi[y]
                        size = q_cnt
                        sorted_q = False
            elif yielded:                      # the slot's next event
                if from_heap:
                    _sift_down(ht, hs, hi, size, new_t, seq, slot)
                else:
                    size = _heap_push(ht, hs, hi, size, new_t, seq, slot)
                seq += 1
            elif from_heap:                    # the slot process ended: pop its event
                size -= 1
                if size > 0:
                    _sift_down(ht, hs, hi, size, ht[size], hs[size], hi[size])
        if k_flush[k] > 0:     # dirty L2 data drains to HBM before the kernel counts as done
            hbm_free = (hbm_free if hbm_free > env else env) + k_flush[k] / hbm_rate
            if hbm_free > env:
                env = env + (hbm_free - env)
        ends[k] = env
    return starts, ends, peak, events, unit_busy


def run_step(hw, kernels, packed, passres, units, cls_unit, cls_rate, max_moves=8.0):
    """Block mode: the tile-level model with one event per step, in numba (no simpy).
    ``max_moves``: mean entries moved per insertion into the sorted event ring beyond which
    a kernel's queue becomes a binary heap (< 0: heap from the start; same order either way)."""
    m = Machine(hw, units)
    pr, p = passres, packed
    sram = hw.memory("sram")
    l2, hbm = hw.memory("l2"), hw.memory("hbm")
    occ = np.array([occupancy(hw, k) for k in kernels], np.int64)
    blk_sp = np.searchsorted(pr.sp_g, p.blk_step[:-1]).astype(np.int64)
    starts, ends, peak, events, unit_busy = _step_sim(
        p.kernel_blk, occ, np.array([k.stages for k in kernels], np.int64),
        np.asarray(pr.kernel_flush, np.float64),
        np.array([k.sram_bytes for k in kernels], np.float64), p.blk_step, blk_sp,
        pr.sp_g, pr.sp_hbm, pr.sp_wb, p.blk_seg, p.seg_idx_off, p.seg_idx_len, p.seg_acc,
        p.seg_nload, p.seg_op, p.acc_coef, p.acc_soff, p.op_cls, p.op_tcoef, p.op_soff,
        p.idx_pool, p.size_pool, np.asarray(cls_unit, np.int64),
        np.asarray(cls_rate, np.float64), max(1, len(units)), hw.gpu.sms,
        hw.gpu.launch_overhead_s, l2.read_bandwidth, l2.write_bandwidth, hbm.read_bandwidth,
        l2.latency_s, hbm.latency_s, sram.write_bandwidth_per_instance,
        sram.read_bandwidth_per_instance, float(max_moves))
    m.sram.peak_bytes = float(peak)
    kernel_times = [(k.name, k.grid, int(o), float(s), float(e))
                    for k, o, s, e in zip(kernels, occ, starts, ends)]
    m.unit_busy = unit_busy.tolist()
    _channel_busy(m, passres)
    return float(ends[-1]), kernel_times, m, int(events)
