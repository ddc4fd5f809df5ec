"""The traffic pass: executes a packed tile program against the shared L2 (numba).

Both granularities count bytes here, so their byte counts agree exactly by construction; the
time models (tile-level simpy, block-level) consume its per-step or per-block outputs.

L2 model (documented in docs/schedules.md, *Engine model*):

* Fully associative LRU over data regions (the program's region ids), capacity in bytes from
  ``hw.memory('l2')``. A read of a resident region is a hit; a miss reads the region from HBM
  and inserts it. Writes allocate the region in L2 and mark it dirty (write-back,
  write-allocate, no fetch: tiles are written whole).
* Dirty regions reach HBM when evicted, and at the end of every kernel all dirty regions are
  written back (they stay resident, clean), so ``hbm.write_bytes`` counts every written region
  once per kernel that wrote it; rewrites of a resident region within a kernel coalesce.
* Order of accesses: the canonical *wave-lockstep* order. Blocks of a kernel are grouped into
  waves of ``slots`` consecutive blocks (``slots`` = SMs x blocks per SM); within a wave the
  blocks advance step by step (block order within a step, loads before stores). This is how
  blocks running at the same time share data through L2 (blocks of one head, GQA heads), and
  it makes HBM traffic a function of the program and the occupancy only, not of timing noise.
* Recency is kept per lockstep round: a region's position in the LRU order is that of its
  first touch in the latest round that touched it (repeat touches in the same round, e.g. 132
  blocks of one head reading K_j, cost a compare). This is LRU over rounds, which is what
  "blocks running at the same time" can resolve anyway.
* A region larger than the whole L2 bypasses it.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass
from itertools import chain
from operator import add

import numba
import numpy as np

__all__ = ["PackedProgram", "pack", "run_pass", "PassResult", "operand_bytes"]


@dataclass
class PackedProgram:
    """Flat arrays of a program (see :func:`pack`)."""

    kernel_blk: np.ndarray      # [K+1] first block of each kernel
    blk_seg: np.ndarray         # [NB+1] first segment of each block
    blk_step: np.ndarray        # [NB+1] first global step of each block
    seg_idx_off: np.ndarray
    seg_idx_len: np.ndarray
    seg_acc: np.ndarray         # [NS+1] first access of each segment
    seg_nload: np.ndarray
    seg_op: np.ndarray          # [NS+1] first op of each segment
    acc_tensor: np.ndarray
    acc_base: np.ndarray
    acc_stride: np.ndarray
    acc_coef: np.ndarray
    acc_soff: np.ndarray        # offset into size_pool, -1 = no sizes (bytes = coef)
    op_cls: np.ndarray
    op_coef: np.ndarray
    op_soff: np.ndarray
    op_tcoef: np.ndarray        # coef x issue: the operations the units are timed for
    seg_opd: np.ndarray         # [NS+1] first operand (SRAM read by compute) of each segment
    opd_tensor: np.ndarray
    opd_coef: np.ndarray
    opd_soff: np.ndarray
    idx_pool: np.ndarray
    size_pool: np.ndarray
    classes: list               # instruction class names, index = op_cls


def pack(kernels) -> PackedProgram:
    """Flatten the kernels' block programs into arrays (pools of index and size arrays are
    shared by identity, so 30 k blocks that loop over the same key blocks cost one array).

    Column-wise: the segments of all blocks are collected first (which also keeps every
    pooled object alive, so ids stay unique), then each field is converted by C-level
    ``map``/``zip`` passes instead of a Python loop per segment and access (this was a
    third of the block mode's time at N = 131072)."""
    # the cyclic GC would rescan the growing list of live segments again and again while
    # blocks are generated (it doubled this function's time); nothing here makes cycles
    gc_was = gc.isenabled()
    gc.disable()
    try:
        return _pack(kernels)
    finally:
        if gc_was:
            gc.enable()


def _pack(kernels) -> PackedProgram:
    kernel_blk = [0]
    blk_nseg = []
    segs: list = []
    for kernel in kernels:
        blocks = list(map(kernel.block, range(kernel.grid)))
        blk_nseg.extend(map(len, blocks))
        segs.extend(chain.from_iterable(blocks))
        kernel_blk.append(len(blk_nseg))
    ns = len(segs)
    i64 = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    cum = lambda counts: np.concatenate(  # noqa: E731
        ([0], np.cumsum(np.fromiter(counts, np.int64, count=ns)))).astype(np.int64)
    if ns:
        idxs, loadss, opss, storess, opdss = zip(*segs)
    else:
        idxs = loadss = opss = storess = opdss = ()

    # pools of index and size arrays, by identity, in order of first use
    idx_at: dict = {}
    idx_chunks = []
    n_idx = 0
    for x in {id(x): x for x in idxs}.values():
        arr = np.ascontiguousarray(x, dtype=np.int64)
        idx_at[id(x)] = n_idx
        idx_chunks.append(arr)
        n_idx += arr.shape[0]
    size_at: dict = {id(None): -1}
    size_chunks = []
    n_size = 0

    def add_sizes(arrays):
        nonlocal n_size
        for x in {id(x): x for x in arrays}.values():
            if id(x) not in size_at:
                arr = np.ascontiguousarray(x, dtype=np.float64)
                size_at[id(x)] = n_size
                size_chunks.append(arr)
                n_size += arr.shape[0]

    seg_idx_off = np.fromiter(map(idx_at.__getitem__, map(id, idxs)), np.int64, count=ns)
    seg_idx_len = np.fromiter((x.shape[0] for x in idxs), np.int64, count=ns)
    seg_nload = np.fromiter(map(len, loadss), np.int64, count=ns)
    seg_acc = cum(map(len, map(add, loadss, storess)))
    # transfers: loads then stores of each segment
    accs = list(chain.from_iterable(map(add, loadss, storess)))
    if accs:
        a_t, a_b, a_s, a_c, a_z = zip(*accs)
        add_sizes(a_z)
        acc_cols = (np.array(a_t, np.float64).astype(np.int64),
                    np.array(a_b, np.float64).astype(np.int64),
                    np.array(a_s, np.float64).astype(np.int64), np.array(a_c, np.float64),
                    np.fromiter(map(size_at.__getitem__, map(id, a_z)), np.int64,
                                count=len(a_z)))
    else:
        acc_cols = (np.zeros(0, np.int64),) * 3 + (np.zeros(0),) + (np.zeros(0, np.int64),)

    # ops and operands tuples are usually shared by many blocks: convert each once
    classes: dict[str, int] = {}
    op_rows_of = {}
    for ops in {id(x): x for x in opss}.values():
        rows = []
        for o in ops:
            c = classes.get(o[0])
            if c is None:
                c = classes[o[0]] = len(classes)
            add_sizes((o[2],))
            rows.append((c, o[1], size_at[id(o[2])], o[1] * o[3]))
        op_rows_of[id(ops)] = rows
    opd_rows_of = {}
    for opds in {id(x): x for x in opdss}.values():
        add_sizes([a[4] for a in opds])
        opd_rows_of[id(opds)] = [(a[0], a[3], size_at[id(a[4])]) for a in opds]
    seg_op = cum(map(len, opss))
    seg_opd = cum(map(len, opdss))
    op_rows = list(chain.from_iterable(map(op_rows_of.__getitem__, map(id, opss))))
    opd_rows = list(chain.from_iterable(map(opd_rows_of.__getitem__, map(id, opdss))))
    ops = np.array(op_rows, dtype=np.float64).reshape(-1, 4)
    opd = np.array(opd_rows, dtype=np.float64).reshape(-1, 3)

    blk_seg = np.concatenate(([0], np.cumsum(i64(blk_nseg)))).astype(np.int64)
    step_at = np.concatenate(([0], np.cumsum(seg_idx_len))).astype(np.int64)
    return PackedProgram(
        i64(kernel_blk), blk_seg, step_at[blk_seg], seg_idx_off, seg_idx_len,
        seg_acc, seg_nload, seg_op, *acc_cols,
        ops[:, 0].astype(np.int64), ops[:, 1].copy(), ops[:, 2].astype(np.int64),
        ops[:, 3].copy(),
        seg_opd, opd[:, 0].astype(np.int64), opd[:, 1].copy(), opd[:, 2].astype(np.int64),
        np.concatenate(idx_chunks) if idx_chunks else np.zeros(0, np.int64),
        np.concatenate(size_chunks) if size_chunks else np.zeros(0, np.float64),
        list(classes))


@dataclass
class PassResult:
    """Counters of the traffic pass. Bytes are float64 (exact: int4 halves)."""

    tensor_l2_read: np.ndarray      # [T] bytes SMs read from L2 (SRAM-boundary reads)
    tensor_l2_write: np.ndarray     # [T] bytes SMs wrote into L2
    tensor_hbm_read: np.ndarray     # [T] L2 misses
    tensor_hbm_write: np.ndarray    # [T] write-backs (evictions + end-of-kernel flushes)
    class_ops: np.ndarray           # [C] FLOPs / operations per instruction class
    kernel_flush: np.ndarray        # [K] bytes written back at each kernel's end
    l2_peak: float
    footprint: float                # distinct bytes ever touched (the HBM footprint)
    blk_load: np.ndarray            # [NB] per-block aggregates for the coarse mode
    blk_store: np.ndarray
    blk_hbm: np.ndarray
    blk_wb: np.ndarray
    blk_miss_steps: np.ndarray
    blk_first_load: np.ndarray
    blk_first_hbm: np.ndarray
    blk_last_store: np.ndarray
    blk_unit: np.ndarray            # [NB, U] seconds of each compute unit (alone on an SM);
                                    # zeros with ``sparse`` (the block mode sums its own)
    st_load: np.ndarray | None      # [NSTEP] per-step values for the tile mode
    st_store: np.ndarray | None
    st_hbm: np.ndarray | None
    st_wb: np.ndarray | None
    st_unit: np.ndarray | None      # [NSTEP, U]
    sp_g: np.ndarray | None = None  # steps with HBM traffic (block mode), sorted by step
    sp_hbm: np.ndarray | None = None    # their HBM read bytes (L2 misses)
    sp_wb: np.ndarray | None = None     # their HBM write-back bytes (evictions)
    dirty_writeback: float = 0.0        # write-back of the data dirty in L2 at the start


@numba.njit(cache=True)
def _operand_bytes(seg_idx_off, seg_idx_len, seg_opd, opd_tensor, opd_coef, opd_soff,
                   idx_pool, size_pool, n_tensors):
    """Bytes the compute units read from SRAM, per tensor class (segment operands)."""
    out = np.zeros(n_tensors)
    for s in range(seg_idx_len.shape[0]):
        n = seg_idx_len[s]
        off = seg_idx_off[s]
        for o in range(seg_opd[s], seg_opd[s + 1]):
            so = opd_soff[o]
            if so < 0:
                out[opd_tensor[o]] += opd_coef[o] * n
            else:
                acc = 0.0
                for x in range(off, off + n):
                    acc += size_pool[so + idx_pool[x]]
                out[opd_tensor[o]] += opd_coef[o] * acc
    return out


def operand_bytes(packed: "PackedProgram", n_tensors: int) -> np.ndarray:
    """``sram`` bytes read by compute, per tensor class (see :class:`Segment`)."""
    p = packed
    return _operand_bytes(p.seg_idx_off, p.seg_idx_len, p.seg_opd, p.opd_tensor, p.opd_coef,
                          p.opd_soff, p.idx_pool, p.size_pool, int(n_tensors))


@numba.njit(cache=True)
def _compact(q_reg, q_stamp, head, tail, stamp):
    """Drop stale entries of the LRU queue (regions touched again later or evicted)."""
    n = 0
    for x in range(head, tail):
        r = q_reg[x]
        if stamp[r] == q_stamp[x]:
            q_reg[n] = r
            q_stamp[n] = q_stamp[x]
            n += 1
    return n


@numba.njit(cache=True, error_model="numpy")
def _pass(kernel_blk, kernel_slots, blk_seg, blk_step, seg_idx_off, seg_idx_len, seg_acc,
          seg_nload, seg_op, acc_tensor, acc_base, acc_stride, acc_coef, acc_soff, op_cls,
          op_coef, op_soff, op_tcoef, idx_pool, size_pool, cls_unit, cls_rate, n_regions, n_tensors,
          n_units, capacity, record, sp_cap, dirty0, dirty_chunk, do_ops):
    n_cls = cls_unit.shape[0]
    nb = blk_seg.shape[0] - 1
    nk = kernel_blk.shape[0] - 1
    nstep = blk_step[nb]
    t_rd = np.zeros(n_tensors + 1)      # slot n_tensors: data dirty in L2 before the start
    t_wr = np.zeros(n_tensors + 1)
    t_hr = np.zeros(n_tensors + 1)
    t_hw = np.zeros(n_tensors + 1)
    c_ops = np.zeros(n_cls)
    k_flush = np.zeros(nk)
    b_load = np.zeros(nb)
    b_store = np.zeros(nb)
    b_hbm = np.zeros(nb)
    b_wb = np.zeros(nb)
    b_miss = np.zeros(nb, np.int64)
    b_fload = np.zeros(nb)
    b_fhbm = np.zeros(nb)
    b_lstore = np.zeros(nb)
    b_unit = np.zeros((nb, n_units))
    ns = nstep if record else 0
    s_load = np.zeros(ns)
    s_store = np.zeros(ns)
    s_hbm = np.zeros(ns)
    s_wb = np.zeros(ns)
    s_unit = np.zeros((ns, n_units))
    # without per-step arrays, the steps that touch HBM are kept sparse (the block mode's
    # step simulation needs them; most steps hit in L2)
    # (fixed capacity: growing arrays inside this loop halves its speed; on overflow the
    # count goes on and the caller runs the pass again with the exact capacity)
    sp_n = 0
    sp_g = np.empty(sp_cap, np.int64)
    sp_hb = np.empty(sp_cap)
    sp_wb = np.empty(sp_cap)
    # LRU as a queue of (region, stamp) touches with lazy deletion: a touch is two stores,
    # evictions pop the oldest entry whose stamp is still the region's last touch.
    # With ``dirty0`` >= 0 L2 starts full of other data (what a benchmark's L2 flush or a
    # previous workload leaves): regions n_regions.. of ``dirty_chunk`` bytes fill the capacity,
    # ``dirty0`` of it dirty, spread evenly through the LRU order. They are evicted first (in
    # that order); dirty ones are written back (tensor slot n_tensors) and never drained at a
    # kernel's end.
    n_pre = 0
    if dirty0 >= 0:
        n_pre = int(np.ceil(capacity / dirty_chunk))
    n_dirty = int(round(dirty0 / dirty_chunk)) if dirty0 > 0 else 0
    n_full = int(capacity // dirty_chunk)
    if dirty0 >= capacity:
        n_dirty = n_pre
    elif n_dirty > n_full:
        n_dirty = n_full
    n_all = n_regions + n_pre
    stamp = np.full(n_all, -1, np.int64)
    qcap = 2 * n_all + 1024
    q_reg = np.empty(qcap, np.int64)
    q_stamp = np.empty(qcap, np.int64)
    head = 0
    tail = 0
    clock = 0
    resident = np.zeros(n_all, np.bool_)
    dirty = np.zeros(n_all, np.bool_)
    seen = np.zeros(n_all, np.bool_)
    rsize = np.zeros(n_all)
    rtensor = np.zeros(n_all, np.int64)
    used = 0.0
    for x in range(n_pre):
        r = n_regions + x
        rsize[r] = dirty_chunk if x < n_pre - 1 else capacity - x * dirty_chunk
        rtensor[r] = n_tensors
        resident[r] = True
        # chunk x is dirty when it crosses a multiple of n_full / n_dirty (even spread over
        # the whole chunks; the partial last one only when every chunk is dirty)
        if x < n_full:
            dirty[r] = (x + 1) * n_dirty // n_full > x * n_dirty // n_full
        else:
            dirty[r] = n_dirty >= n_pre
        stamp[r] = clock
        q_reg[tail] = r
        q_stamp[tail] = clock
        tail += 1
        clock += 1
        used += rsize[r]
    pre_used = used
    peak = 0.0
    footprint = 0.0
    for k in range(nk):
        b0 = kernel_blk[k]
        b1 = kernel_blk[k + 1]
        slots = kernel_slots[k]
        for w0 in range(b0, b1, slots):
            w1 = min(w0 + slots, b1)
            nw = w1 - w0
            cseg = np.empty(nw, np.int64)
            cpos = np.zeros(nw, np.int64)
            cstep = np.zeros(nw, np.int64)
            alive = 0
            for q in range(nw):
                b = w0 + q
                s = blk_seg[b]
                while s < blk_seg[b + 1] and seg_idx_len[s] == 0:
                    s += 1
                cseg[q] = s
                if s < blk_seg[b + 1]:
                    alive += 1
            while alive > 0:
                round_base = clock
                for q in range(nw):
                    b = w0 + q
                    s = cseg[q]
                    if s >= blk_seg[b + 1]:
                        continue
                    j = idx_pool[seg_idx_off[s] + cpos[q]]
                    t = cstep[q]
                    g = blk_step[b] + t
                    last = g == blk_step[b + 1] - 1
                    ld = 0.0
                    st = 0.0
                    hb = 0.0
                    wb = 0.0
                    a0 = seg_acc[s]
                    a1 = seg_acc[s + 1]
                    for a in range(a0, a1):
                        nbytes = acc_coef[a]
                        if acc_soff[a] >= 0:
                            nbytes *= size_pool[acc_soff[a] + j]
                        r = acc_base[a] + acc_stride[a] * j
                        ten = acc_tensor[a]
                        is_write = a - a0 >= seg_nload[s]
                        if is_write:
                            st += nbytes
                            t_wr[ten] += nbytes
                        else:
                            ld += nbytes
                            t_rd[ten] += nbytes
                        if tail == qcap:
                            tail = _compact(q_reg, q_stamp, head, tail, stamp)
                            head = 0
                        if resident[r]:
                            if stamp[r] < round_base:    # first touch in this round
                                stamp[r] = clock
                                q_reg[tail] = r
                                q_stamp[tail] = clock
                                tail += 1
                                clock += 1
                            if is_write:
                                dirty[r] = True
                            continue
                        if not seen[r]:      # a hit implies seen: checked on misses only
                            seen[r] = True
                            footprint += nbytes
                        if not is_write:
                            hb += nbytes
                            t_hr[ten] += nbytes
                        if nbytes > capacity:      # bypasses the cache
                            if is_write:
                                wb += nbytes
                                t_hw[ten] += nbytes
                            continue
                        while used + nbytes > capacity:
                            v = q_reg[head]
                            if stamp[v] != q_stamp[head] or not resident[v]:
                                head += 1        # stale entry
                                continue
                            head += 1
                            resident[v] = False
                            used -= rsize[v]
                            if v >= n_regions:
                                pre_used -= rsize[v]
                            if dirty[v]:
                                dirty[v] = False
                                wb += rsize[v]
                                t_hw[rtensor[v]] += rsize[v]
                        resident[r] = True
                        dirty[r] = is_write
                        rsize[r] = nbytes
                        rtensor[r] = ten
                        used += nbytes
                        if used - pre_used > peak:
                            peak = used - pre_used
                        stamp[r] = clock
                        q_reg[tail] = r
                        q_stamp[tail] = clock
                        tail += 1
                        clock += 1
                    for o in range(seg_op[s], seg_op[s + 1] if do_ops else seg_op[s]):
                        size = size_pool[op_soff[o] + j] if op_soff[o] >= 0 else 1.0
                        c = op_cls[o]
                        c_ops[c] += op_coef[o] * size
                        if sp_cap == 0:     # block mode times units in its own simulation
                            u = cls_unit[c]
                            sec = op_tcoef[o] * size / cls_rate[c]
                            b_unit[b, u] += sec
                            if record:
                                s_unit[g, u] += sec
                    b_load[b] += ld
                    b_store[b] += st
                    b_hbm[b] += hb
                    b_wb[b] += wb
                    if hb > 0:
                        b_miss[b] += 1
                    if t == 0:
                        b_fload[b] = ld
                        b_fhbm[b] = hb
                    if last:
                        b_lstore[b] = st
                    if record:
                        s_load[g] = ld
                        s_store[g] = st
                        s_hbm[g] = hb
                        s_wb[g] = wb
                    elif hb > 0 or wb > 0:
                        if sp_n < sp_cap:
                            sp_g[sp_n] = g
                            sp_hb[sp_n] = hb
                            sp_wb[sp_n] = wb
                        sp_n += 1
                    # advance the cursor
                    cstep[q] = t + 1
                    p = cpos[q] + 1
                    if p >= seg_idx_len[s]:
                        p = 0
                        s += 1
                        while s < blk_seg[b + 1] and seg_idx_len[s] == 0:
                            s += 1
                        cseg[q] = s
                        if s >= blk_seg[b + 1]:
                            alive -= 1
                    cpos[q] = p
        # end of kernel: write back every dirty region (it stays resident, clean)
        for r in range(n_regions):
            if dirty[r]:
                dirty[r] = False
                k_flush[k] += rsize[r]
                t_hw[rtensor[r]] += rsize[r]
    return (t_rd, t_wr, t_hr, t_hw, c_ops, k_flush, peak, footprint, b_load, b_store, b_hbm,
            b_wb, b_miss, b_fload, b_fhbm, b_lstore, b_unit, s_load, s_store, s_hbm, s_wb,
            s_unit, sp_n, sp_g, sp_hb, sp_wb)


@numba.njit(cache=True)
def _op_terms(seg_op, seg_idx_off, seg_idx_len, op_soff, op_coef, idx_pool, size_pool):
    """Per op row: its operations summed over its segment's steps, and whether every term is
    a non-negative integer-valued float with each sum <= 2**52 (else the sums are unused).
    Rows with the same (index array, size array, coefficient) are summed once."""
    n_ops = op_soff.shape[0]
    out = np.zeros(n_ops)
    seen = {(np.int64(0), np.int64(0), np.int64(0), 0.0): 0.0}
    for s in range(seg_op.shape[0] - 1):
        off = seg_idx_off[s]
        n = seg_idx_len[s]
        for o in range(seg_op[s], seg_op[s + 1]):
            so = op_soff[o]
            coef = op_coef[o]
            key = (off, n, so, coef)
            if key in seen:
                out[o] = seen[key]
                continue
            acc = 0.0
            for x in range(off, off + n):
                t = coef * size_pool[so + idx_pool[x]] if so >= 0 else coef * 1.0
                if not (t >= 0.0 and t <= 2.0 ** 52 and t == np.floor(t)):
                    return out, False
                acc += t
            if acc > 2.0 ** 52:
                return out, False
            seen[key] = acc
            out[o] = acc
    return out, True


def _exact_class_ops(p: PackedProgram, n_cls: int):
    """Operations per instruction class summed per segment instead of per step, or None.

    The pass adds ``op_coef * size`` step by step; a different order gives the same float
    only where every partial sum is exact. That holds when every term is an integer-valued
    float and the (non-negative) terms of all steps sum to at most 2**52: every partial sum
    is then an integer below 2**53, exact in any order. FLOP and exponential counts are such
    sums; otherwise None, and the pass keeps its per-step loop."""
    terms, ok = _op_terms(p.seg_op, p.seg_idx_off, p.seg_idx_len, p.op_soff, p.op_coef,
                          p.idx_pool, p.size_pool)
    if not ok or terms.sum() > 2.0 ** 52:
        return None
    return 0.0 + np.bincount(p.op_cls, weights=terms, minlength=n_cls)


def run_pass(packed: PackedProgram, kernel_slots, cls_unit, cls_rate, n_regions: int,
             n_tensors: int, n_units: int, l2_capacity: float, record: bool,
             sparse: bool = False, l2_dirty_bytes: float | None = None) -> PassResult:
    """Run the traffic pass; ``record`` keeps per-step arrays (tile mode), ``sparse`` the
    steps with HBM traffic (block mode). ``l2_dirty_bytes``: None for an empty L2 at the
    start; else L2 starts full of other, least recently used data of which that many bytes
    (spread evenly) are dirty: the write-back of those evicted is ``dirty_writeback`` (and in
    the steps' write-backs, hence in time; to 1/512 of the capacity)."""
    # None: L2 starts empty; a number: L2 starts full of other data, that many bytes dirty
    dirty0 = -1.0 if l2_dirty_bytes is None else float(min(max(l2_dirty_bytes, 0.0),
                                                            l2_capacity))
    # granularity of that data in the LRU order: whole 128 B lines, about 1/512 of L2
    chunk = float(max(128, round(l2_capacity / 512 / 128) * 128))
    p = packed
    sp_cap = 2 * int(n_regions) + 4096 if sparse and not record else 0
    # the block mode times units itself: the pass only needs the class totals
    c_exact = _exact_class_ops(p, len(cls_unit)) if sp_cap else None
    while True:
        out = _pass(p.kernel_blk, np.asarray(kernel_slots, np.int64), p.blk_seg, p.blk_step,
                p.seg_idx_off, p.seg_idx_len, p.seg_acc, p.seg_nload, p.seg_op, p.acc_tensor,
                p.acc_base, p.acc_stride, p.acc_coef, p.acc_soff, p.op_cls, p.op_coef,
                p.op_soff, p.op_tcoef, p.idx_pool, p.size_pool, np.asarray(cls_unit, np.int64),
                np.asarray(cls_rate, np.float64), int(n_regions), int(n_tensors), int(n_units),
                float(l2_capacity), bool(record), sp_cap, dirty0, chunk, c_exact is None)
        if out[-4] <= sp_cap or not sparse:
            break
        sp_cap = int(out[-4])
    (t_rd, t_wr, t_hr, t_hw, c_ops, k_flush, peak, footprint, b_load, b_store, b_hbm, b_wb,
     b_miss, b_fload, b_fhbm, b_lstore, b_unit, s_load, s_store, s_hbm, s_wb, s_unit,
     sp_n, sp_g, sp_hb, sp_wb) = out
    if c_exact is not None:
        c_ops = c_exact
    sp_n = min(sp_n, sp_cap)
    sp_g, sp_hb, sp_wb = sp_g[:sp_n], sp_hb[:sp_n], sp_wb[:sp_n]
    rec = (lambda x: x) if record else (lambda x: None)
    order = np.argsort(sp_g, kind="stable")     # lockstep order -> step order
    dirty_wb = float(t_hw[-1])
    t_rd, t_wr, t_hr, t_hw = t_rd[:-1], t_wr[:-1], t_hr[:-1], t_hw[:-1]
    return PassResult(t_rd, t_wr, t_hr, t_hw, c_ops, k_flush, float(peak), float(footprint),
                      b_load, b_store, b_hbm, b_wb, b_miss, b_fload, b_fhbm, b_lstore, b_unit,
                      rec(s_load), rec(s_store), rec(s_hbm), rec(s_wb), rec(s_unit),
                      sp_g[order], sp_hb[order], sp_wb[order], dirty_wb)
