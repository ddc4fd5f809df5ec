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

The block mode replaces the per-step events by one event per block whose duration is the
pipeline's closed form over the block's aggregates, with the bandwidth shares of the moment
it starts (blocks running on the GPU and on its SM); see :func:`_block_duration`.
"""
from __future__ import annotations

from collections import deque

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


def _block_duration(m, kernel, pr, b, n_act, k_sm, havg, wbavg, sm_in_bw, sm_out_bw):
    """Closed form of the tile pipeline for block ``b`` with ``n_act`` blocks running on the
    GPU and ``k_sm`` on its SM (bandwidths and units shared evenly among them)."""
    n = m.blk_nsteps[b]
    if n == 0:
        return 0.0
    c_alone = pr.unit_sum[b]
    c_eff = max(c_alone, k_sm * pr.unit_max[b])
    per_load = max(n_act / m.l2_read.rate, k_sm / sm_in_bw)
    per_store = max(n_act / m.l2_write.rate, k_sm / sm_out_bw)
    load_t = pr.blk_load[b] * per_load                  # the block's share of the channels
    load_alone = pr.blk_load[b] / sm_in_bw              # its own transfer time, no queueing
    store_t = pr.blk_store[b] * per_store
    hbm_t = (havg + wbavg) * n_act / m.hbm.rate
    lat = n * m.l2_read.latency_s + pr.blk_miss_steps[b] * m.hbm.latency_s
    s = kernel.stages
    first = pr.blk_first_load[b] / sm_in_bw + m.l2_read.latency_s
    if pr.blk_first_hbm[b]:
        first += m.hbm.latency_s
    last = pr.blk_last_store[b] * per_store + (m.l2_write.latency_s if
                                                pr.blk_last_store[b] else 0.0)
    # Throughput bounds (the SM's units shared by k_sm blocks, the channels by n_act) and the
    # block's own dependency chain: with S buffers, a load issued S-1 steps ahead must arrive
    # (S = 1: load, then compute, step after step; other blocks on the SM fill the gaps).
    chain = lat + load_alone + c_alone
    if s == 1:
        return max(c_eff, load_t, store_t, hbm_t, chain) + last
    body = max(c_eff, load_t, store_t, hbm_t, (chain - first) / s)
    return first + body + last


def run_block(hw, kernels, packed, passres, units):
    """Block-level timing: one simpy timeout per thread block."""
    env = simpy.Environment()
    m = Machine(hw, units)
    m.blk_nsteps = np.diff(packed.blk_step).tolist()
    # plain lists: numpy scalar indexing costs ~100 ns a value in the per-block closed form
    pr = passres
    agg = {name: getattr(pr, name).tolist() for name in (
        "blk_load", "blk_store", "blk_miss_steps", "blk_first_load", "blk_first_hbm",
        "blk_last_store")}
    agg["unit_sum"] = pr.blk_unit.sum(axis=1).tolist()
    agg["unit_max"] = pr.blk_unit.max(axis=1).tolist() if pr.blk_unit.size else []
    lists = type("BlockAggregates", (), agg)
    sm_in_bw = hw.memory("sram").write_bandwidth_per_instance
    sm_out_bw = hw.memory("sram").read_bandwidth_per_instance
    on_sm = [0] * hw.gpu.sms
    state = {"active": 0}
    events = [0]

    def slot_proc(run, sm, _):
        kernel = run.kernel
        k = run.index
        b0, b1 = int(packed.kernel_blk[k]), int(packed.kernel_blk[k + 1])
        grid = max(1, b1 - b0)
        havg = float(passres.blk_hbm[b0:b1].sum()) / grid
        wbavg = float(passres.blk_wb[b0:b1].sum()) / grid
        while True:
            bl = run.take()
            if bl is None:
                return
            b = b0 + bl
            m.sram.allocate(sm, kernel.sram_bytes, f"kernel {kernel.name!r} block {bl}")
            state["active"] += 1
            on_sm[sm] += 1
            # the shares of the moment: every slot of the wave is taken at the same instant
            n_act = min(run.slots, state["active"] + run.kernel.grid - bl - 1)
            k_sm = max(on_sm[sm], min(run.occ, -(-n_act // hw.gpu.sms)))
            dur = _block_duration(m, kernel, lists, b, n_act, k_sm, havg, wbavg,
                                  sm_in_bw, sm_out_bw)
            if dur > 0:
                events[0] += 1
                yield env.timeout(dur)
            state["active"] -= 1
            on_sm[sm] -= 1
            m.sram.release(sm, kernel.sram_bytes)

    def slot_proc_wrapped(run, sm, x):
        if not hasattr(run, "slots"):
            run.occ = occupancy(hw, run.kernel)
            run.slots = min(run.kernel.grid, run.occ * hw.gpu.sms)
        return slot_proc(run, sm, x)

    kernel_times: list = []
    env.process(_drive(env, hw, m, kernels, packed, passres.kernel_flush, slot_proc_wrapped,
                       kernel_times))
    env.run()
    m.unit_busy = passres.blk_unit.sum(axis=0).tolist()
    _channel_busy(m, passres)
    return float(env.now), kernel_times, m, events[0]
