"""The GPU execution model: thread blocks on SMs in waves, pipelined loads, shared channels.

Time model (per kernel; kernels run back to back, each after ``launch_overhead_s``):

* Occupancy: ``min(max_blocks_per_sm, sram capacity // sram_bytes per block)`` blocks per SM
  (a block needing more than ``max_per_block`` is a CapacityError). Blocks are dispatched in
  grid order, first one per SM, then a second per SM, ...; a finished block's slot takes the
  next block of the grid, so the last wave's tail shows in the kernel time.
* A block runs its steps through a pipeline of ``stages`` buffers: the loads of step t+S-1 are
  issued when step t-1's compute ends (its buffer is free), step t's compute starts when its
  loads have arrived and the SM's units are free. Loads pass the L2 read channel (aggregate
  bandwidth, shared by all SMs), the SM's own ingress (per-SM share of the SRAM bandwidth) and,
  for L2 misses, the HBM channel; each adds its latency. Stores of a step are issued when its
  compute ends (L2 write channel, SM egress), and write-backs of dirty L2 data use the HBM
  channel. Compute ops run in order on the SM's units (tensor cores, SFU/CUDA cores) at the
  per-SM share of the class's effective rate; co-resident blocks queue on them.
* HBM reads and writes share one channel (a DRAM bus); L2 reads and writes are separate.

The wave mode (granularity ``wave``; ``block`` is the step-level numba port in
:mod:`.stepsim`) replaces the per-step events by one event per block whose duration is the
pipeline's closed form over the block's aggregates, with the bandwidth shares of the moment
it starts (blocks running on the GPU and on its SM); see :func:`_block_duration`. Its event
loop (:func:`_block_sim`) is a numba heap with simpy's tie order, not simpy itself.
"""
from __future__ import annotations

from collections import deque

import numba
import numpy as np
import simpy

from ..errors import CapacityError
from ..units import format_quantity
from .resources import Channel, Occupancy

__all__ = ["Machine", "occupancy", "run_tile", "run_block"]


def occupancy(hw, kernel) -> int:
    """Blocks of ``kernel`` that fit on one SM at a time."""
    sram = hw.memory("sram")
    per_block = sram.max_per_block_bytes or sram.capacity_bytes
    need = kernel.sram_bytes
    if need > per_block:
        detail = f" ({kernel.sram_detail})" if kernel.sram_detail else ""
        raise CapacityError(
            f"kernel {kernel.name!r}: a thread block needs {need:,.0f} B of sram{detail}; "
            f"sram allows {per_block:,.0f} B per block ({format_quantity(per_block, 'bytes')}) "
            f"of {sram.capacity_bytes:,.0f} B per SM")
    fit = int(sram.capacity_bytes // need) if need > 0 else hw.gpu.max_blocks_per_sm
    return max(1, min(hw.gpu.max_blocks_per_sm, fit))


class Machine:
    """Channels, per-SM units and SRAM occupancy of one run (no state shared between runs)."""

    def __init__(self, hw, units: list[str]):
        sms = hw.gpu.sms
        sram, l2, hbm = hw.memory("sram"), hw.memory("l2"), hw.memory("hbm")
        self.sms = sms
        self.l2_read = Channel("l2.read", l2.read_bandwidth, l2.latency_s)
        self.l2_write = Channel("l2.write", l2.write_bandwidth, l2.latency_s)
        self.hbm = Channel("hbm", hbm.read_bandwidth, hbm.latency_s)
        self.sm_in = [Channel(f"sram[{s}].in", sram.write_bandwidth_per_instance)
                      for s in range(sms)]
        self.sm_out = [Channel(f"sram[{s}].out", sram.read_bandwidth_per_instance)
                       for s in range(sms)]
        self.unit_names = units
        self.unit_free = [[0.0] * len(units) for _ in range(sms)]
        self.unit_busy = [0.0] * len(units)
        self.sram = Occupancy("sram", sram.capacity_bytes, sms)
        self.trace: list | None = None

    def busy(self) -> dict:
        out = {"l2.read": self.l2_read.busy_s, "l2.write": self.l2_write.busy_s,
               "hbm": self.hbm.busy_s,
               "sram.in": sum(c.busy_s for c in self.sm_in),
               "sram.out": sum(c.busy_s for c in self.sm_out)}
        for name, busy in zip(self.unit_names, self.unit_busy):
            out[name] = busy
        return out


class _KernelRun:
    """Dispatch state of one kernel: the next block to place, blocks running per SM."""

    def __init__(self, kernel, index):
        self.kernel = kernel
        self.index = index
        self.next = 0
        self.running = 0

    def take(self):
        if self.next >= self.kernel.grid:
            return None
        b = self.next
        self.next += 1
        return b


def _drive(env, hw, machine, kernels, packed, flush, slot_proc, kernel_times):
    """Launch kernels one after another; each runs its slot processes to completion."""
    sms = hw.gpu.sms
    for k, kernel in enumerate(kernels):
        yield env.timeout(hw.gpu.launch_overhead_s)
        start = env.now
        occ = occupancy(hw, kernel)
        run = _KernelRun(kernel, k)
        slots = min(kernel.grid, occ * sms)
        procs = [env.process(slot_proc(run, i % sms, packed.blk_step[packed.kernel_blk[k]:]))
                 for i in range(slots)]
        if procs:
            yield env.all_of(procs)
        if flush[k] > 0:     # dirty L2 data drains to HBM before the kernel counts as done
            end = machine.hbm.reserve(env.now, flush[k])
            if end > env.now:
                yield env.timeout(end - env.now)
        kernel_times.append((kernel.name, kernel.grid, occ, float(start), float(env.now)))


def run_tile(hw, kernels, packed, passres, units, trace=False):
    """Tile-level timing: one simpy timeout per step (plus one per wait for data)."""
    env = simpy.Environment()
    m = Machine(hw, units)
    m.trace = [] if trace else None
    st_load = passres.st_load.tolist()
    st_store = passres.st_store.tolist()
    st_hbm = passres.st_hbm.tolist()
    st_wb = passres.st_wb.tolist()
    # one list per unit: a 2-D tolist() builds a list per row (slow for 0.5 M steps)
    st_unit = [passres.st_unit[:, u].tolist() for u in range(len(units))]
    unit_range = range(len(units))
    l2r, l2w, hbm = m.l2_read, m.l2_write, m.hbm
    l2_lat, hbm_lat = l2r.latency_s, hbm.latency_s
    blk_step = packed.blk_step
    kernel_blk = packed.kernel_blk
    events = [0]
    tr = m.trace
    sm_in = m.sm_in
    l2r_rate = l2r.rate
    sm_in_rate = m.sm_in[0].rate

    def load(now, g, sm, kname, b):
        lb = st_load[g]
        hb = st_hbm[g]
        if lb == 0 and hb == 0:
            return now
        # inlined Channel.reserve of the L2 read channel and the SM's ingress (hot path)
        done = (l2r.free_at if l2r.free_at > now else now) + lb / l2r_rate
        l2r.free_at = done
        ch = sm_in[sm]
        e2 = (ch.free_at if ch.free_at > now else now) + lb / sm_in_rate
        ch.free_at = e2
        if e2 > done:
            done = e2
        if hb:
            e3 = hbm.reserve(now, hb) + hbm_lat
            if e3 > done:
                done = e3
        done += l2_lat
        if tr is not None:
            tr.append((now, done, "load", lb, hb, kname, b, sm))
        return done

    def store(now, g, sm, kname, b):
        sb = st_store[g]
        wb = st_wb[g]
        done = now
        if sb:
            done = l2w.reserve(now, sb)
            e2 = m.sm_out[sm].reserve(now, sb)
            if e2 > done:
                done = e2
            done += l2_lat
        if wb:
            hbm.reserve(now, wb)
        if tr is not None and (sb or wb):
            tr.append((now, done, "store", sb, wb, kname, b, sm))
        return done

    def slot_proc(run, sm, _):
        kernel = run.kernel
        kname = kernel.name
        stages = kernel.stages
        free = m.unit_free[sm]
        busy = m.unit_busy
        base = kernel_blk[run.index]
        while True:
            bl = run.take()
            if bl is None:
                return
            b = base + bl
            m.sram.allocate(sm, kernel.sram_bytes, f"kernel {kname!r} block {bl}")
            g0, g1 = int(blk_step[b]), int(blk_step[b + 1])
            n = g1 - g0
            now = env.now
            ready = deque()
            for t in range(min(stages - 1, n)):
                ready.append(load(now, g0 + t, sm, kname, bl))
            for t in range(n):
                g = g0 + t
                if t:
                    store(now, g - 1, sm, kname, bl)
                if t + stages - 1 < n:
                    ready.append(load(now, g + stages - 1, sm, kname, bl))
                start = ready.popleft()
                if start < now:
                    start = now
                for u in unit_range:
                    sec = st_unit[u][g]
                    if sec:
                        if free[u] > start:
                            start = free[u]
                        if tr is not None:
                            tr.append((start, start + sec, units[u], sec, 0.0, kname, bl, sm))
                        start += sec
                        free[u] = start
                        busy[u] += sec
                if start > now:
                    events[0] += 1
                    yield env.timeout(start - now)
                    now = start
            if n:
                done = store(now, g1 - 1, sm, kname, bl)
                if done > now:
                    events[0] += 1
                    yield env.timeout(done - now)
            m.sram.release(sm, kernel.sram_bytes)

    kernel_times: list = []
    env.process(_drive(env, hw, m, kernels, packed, passres.kernel_flush, slot_proc,
                       kernel_times))
    env.run()
    _channel_busy(m, passres)
    return float(env.now), kernel_times, m, events[0]


def _channel_busy(m, pr):
    """Busy seconds of each channel: the bytes it carried over its rate (FIFO servers are
    never idle while they carry bytes, so this equals the sum of the service intervals)."""
    load, store = float(pr.blk_load.sum()), float(pr.blk_store.sum())
    m.l2_read.busy_s = load / m.l2_read.rate
    m.l2_write.busy_s = store / m.l2_write.rate
    m.hbm.busy_s = float(pr.blk_hbm.sum() + pr.blk_wb.sum() + pr.kernel_flush.sum()) / m.hbm.rate
    for c in m.sm_in + m.sm_out:
        c.busy_s = 0.0
    m.sm_in[0].busy_s = load / m.sm_in[0].rate      # summed over SMs in Machine.busy()
    m.sm_out[0].busy_s = store / m.sm_out[0].rate


@numba.njit(cache=True, inline="always")
def _block_duration(b, n, stages, n_act, k_sm, havg, wbavg, b_load, b_store, b_miss, b_fload,
                    b_fhbm, b_lstore, u_sum, u_max, l2r_rate, l2w_rate, hbm_rate, l2_lat,
                    hbm_lat, sm_in_bw, sm_out_bw):
    """Closed form of the tile pipeline for block ``b`` (``n`` steps) with ``n_act`` blocks
    running on the GPU and ``k_sm`` on its SM (bandwidths and units shared evenly)."""
    if n == 0:
        return 0.0
    c_alone = u_sum[b]
    c_eff = max(c_alone, k_sm * u_max[b])
    per_load = max(n_act / l2r_rate, k_sm / sm_in_bw)
    per_store = max(n_act / l2w_rate, k_sm / sm_out_bw)
    load_t = b_load[b] * per_load                   # the block's share of the channels
    load_alone = b_load[b] / sm_in_bw               # its own transfer time, no queueing
    store_t = b_store[b] * per_store
    hbm_t = (havg + wbavg) * n_act / hbm_rate
    lat = n * l2_lat + b_miss[b] * hbm_lat
    first = b_fload[b] / sm_in_bw + l2_lat
    if b_fhbm[b] > 0:
        first += hbm_lat
    last = b_lstore[b] * per_store
    if b_lstore[b] > 0:
        last += l2_lat
    # Throughput bounds (the SM's units shared by k_sm blocks, the channels by n_act) and the
    # block's own dependency chain: with S buffers, a load issued S-1 steps ahead must arrive
    # (S = 1: load, then compute, step after step; other blocks on the SM fill the gaps).
    chain = lat + load_alone + c_alone
    if stages == 1:
        return max(max(c_eff, load_t), max(store_t, max(hbm_t, chain))) + last
    body = max(max(c_eff, load_t), max(store_t, max(hbm_t, (chain - first) / stages)))
    return first + body + last


@numba.njit(cache=True)
def _heap_push(ht, hs, hi, size, t, seq, slot):
    x = size
    ht[x] = t
    hs[x] = seq
    hi[x] = slot
    while x > 0:
        p = (x - 1) >> 1
        if ht[p] < ht[x] or (ht[p] == ht[x] and hs[p] < hs[x]):
            break
        ht[p], ht[x] = ht[x], ht[p]
        hs[p], hs[x] = hs[x], hs[p]
        hi[p], hi[x] = hi[x], hi[p]
        x = p
    return size + 1


@numba.njit(cache=True)
def _heap_pop(ht, hs, hi, size):
    size -= 1
    ht[0] = ht[size]
    hs[0] = hs[size]
    hi[0] = hi[size]
    x = 0
    while True:
        l = 2 * x + 1
        if l >= size:
            break
        c = l
        r = l + 1
        if r < size and (ht[r] < ht[l] or (ht[r] == ht[l] and hs[r] < hs[l])):
            c = r
        if ht[x] < ht[c] or (ht[x] == ht[c] and hs[x] < hs[c]):
            break
        ht[c], ht[x] = ht[x], ht[c]
        hs[c], hs[x] = hs[x], hs[c]
        hi[c], hi[x] = hi[x], hi[c]
        x = c
    return size


@numba.njit(cache=True)
def _block_sim(kernel_blk, k_occ, k_stages, k_flush, k_sram, nsteps, b_load, b_store, b_hbm,
               b_wb, b_miss, b_fload, b_fhbm, b_lstore, u_sum, u_max, sms, launch, l2r_rate,
               l2w_rate, hbm_rate, l2_lat, hbm_lat, sm_in_bw, sm_out_bw):
    """Event loop of the block mode: slots take blocks in grid order as they free up (the
    same dispatch as the tile level), one event per block; ties in time are served in the
    order they were scheduled (as simpy does)."""
    nk = kernel_blk.shape[0] - 1
    starts = np.zeros(nk)
    ends = np.zeros(nk)
    on_sm = np.zeros(sms, np.int64)
    now = 0.0
    hbm_free = 0.0
    peak = 0.0
    events = 0
    for k in range(nk):
        now += launch
        start = now
        starts[k] = start
        b0 = kernel_blk[k]
        grid = kernel_blk[k + 1] - b0
        occ = k_occ[k]
        slots = min(grid, occ * sms)
        stages = k_stages[k]
        g = max(1, grid)
        havg = b_hbm[b0:b0 + grid].sum() / g
        wbavg = b_wb[b0:b0 + grid].sum() / g
        ht = np.empty(max(1, slots))
        hs = np.empty(max(1, slots), np.int64)
        hi = np.empty(max(1, slots), np.int64)
        size = 0
        seq = 0
        nxt = 0
        active = 0
        last_t = start
        for it in range(slots + grid + 1):
            # the first `slots` iterations start the slots at `start`; later ones pop events
            if it < slots:
                slot = it
                t = start
            else:
                if size == 0:
                    break
                t = ht[0]
                slot = hi[0]
                size = _heap_pop(ht, hs, hi, size)
                active -= 1
                on_sm[slot % sms] -= 1
                last_t = t
            sm = slot % sms
            while nxt < grid:
                bl = nxt
                nxt += 1
                b = b0 + bl
                active += 1
                on_sm[sm] += 1
                used = on_sm[sm] * k_sram[k]
                if used > peak:
                    peak = used
                n_act = min(slots, active + grid - bl - 1)
                k_sm = max(on_sm[sm], min(occ, -(-n_act // sms)))
                dur = _block_duration(b, nsteps[b], stages, n_act, k_sm, havg, wbavg, b_load,
                                      b_store, b_miss, b_fload, b_fhbm, b_lstore, u_sum,
                                      u_max, l2r_rate, l2w_rate, hbm_rate, l2_lat, hbm_lat,
                                      sm_in_bw, sm_out_bw)
                if dur > 0:
                    events += 1
                    size = _heap_push(ht, hs, hi, size, t + dur, seq, slot)
                    seq += 1
                    break
                active -= 1
                on_sm[sm] -= 1
        now = last_t
        if k_flush[k] > 0:     # dirty L2 data drains to HBM before the kernel counts as done
            hbm_free = max(hbm_free, now) + k_flush[k] / hbm_rate
            if hbm_free > now:
                now = hbm_free
        ends[k] = now
    return starts, ends, peak, events


def run_block(hw, kernels, packed, passres, units):
    """Wave-mode timing: one event per thread block (numba event loop, no simpy)."""
    m = Machine(hw, units)
    pr = passres
    sram = hw.memory("sram")
    l2, hbm = hw.memory("l2"), hw.memory("hbm")
    occ = np.array([occupancy(hw, k) for k in kernels], np.int64)
    u_sum = pr.blk_unit.sum(axis=1) if pr.blk_unit.size else np.zeros(pr.blk_load.shape[0])
    u_max = pr.blk_unit.max(axis=1) if pr.blk_unit.size else np.zeros(pr.blk_load.shape[0])
    starts, ends, peak, events = _block_sim(
        packed.kernel_blk, occ, np.array([k.stages for k in kernels], np.int64),
        np.asarray(pr.kernel_flush, np.float64),
        np.array([k.sram_bytes for k in kernels], np.float64),
        np.diff(packed.blk_step), pr.blk_load, pr.blk_store, pr.blk_hbm, pr.blk_wb,
        pr.blk_miss_steps.astype(np.float64), pr.blk_first_load, pr.blk_first_hbm,
        pr.blk_last_store, np.ascontiguousarray(u_sum), np.ascontiguousarray(u_max),
        hw.gpu.sms, hw.gpu.launch_overhead_s, l2.read_bandwidth, l2.write_bandwidth,
        hbm.read_bandwidth, l2.latency_s, hbm.latency_s, sram.write_bandwidth_per_instance,
        sram.read_bandwidth_per_instance)
    m.sram.peak_bytes = float(peak)
    kernel_times = [(k.name, k.grid, int(o), float(s), float(e))
                    for k, o, s, e in zip(kernels, occ, starts, ends)]
    m.unit_busy = pr.blk_unit.sum(axis=0).tolist()
    _channel_busy(m, passres)
    return float(ends[-1]), kernel_times, m, int(events)
