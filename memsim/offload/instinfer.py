"""In-storage attention (InstInfer, Pan et al., arXiv:2409.04992) vs SSD offloading.

Decode of one step for ``batch`` sequences at ``context`` cached tokens, weights on the GPU:

- ``ssd_offload`` (the FlexGen-style baseline): the KV cache lives on the SSD; each layer's KV
  is read from flash (storage model at the request size and reader threads), moved over the
  drive's NVMe link into host memory and over PCIe into the GPU, where attention runs. The next
  layer's KV load overlaps the current layer's compute (as Algorithm 1 of FlexGen).
- ``instinfer``: the KV cache lives in a computational storage drive; q, k, v go GPU -> drive
  over the peer-to-peer link, the drive's attention engine (``flash.compute``) reads the KV at
  its **internal** flash bandwidth (all channels), and the output comes back over P2P. One
  layer's chain is serial: GPU projections -> P2P -> in-drive attention -> P2P -> GPU MLP.
  ``kv_fraction`` < 1 models SparF's sparse KV reads (the paper's compression ratio 1/8).
- ``gpu``: the KV cache in GPU memory (only where it fits), for reference.

Per layer the chains run on the resources ``gpu``, ``pcie_h2d``, ``pcie_d2h``, ``ssd``, ``p2p``
and ``csd`` with :func:`memsim.offload.flexgen_sim.simulate_iteration`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..llm.model import ModelSpec
from .flexgen import GPU_RATES
from .flexgen_sim import simulate_iteration
from .machine import OffloadMachine, rate_of

__all__ = ["DecodeStep", "decode_step", "MODES", "sweep", "crossover_context"]

MODES = ("ssd_offload", "instinfer", "gpu")
RESOURCES = ("gpu", "pcie_h2d", "pcie_d2h", "ssd", "p2p", "csd")
CSD_RATES = ("csd_fp16_fma",)


@dataclass(frozen=True)
class DecodeStep:
    """One decode step: time, tokens/s, busy seconds per resource, bytes per route."""

    mode: str
    batch: int
    context: int
    time_s: float
    busy_s: dict
    bytes: dict
    fits: bool = True

    @property
    def throughput(self) -> float:
        return self.batch / self.time_s


def decode_step(model: ModelSpec, machine: OffloadMachine, mode: str, batch: int, context: int,
                dtype_bytes: float = 2.0, kv_fraction: float = 1.0, io_chunk: int = 1 << 20,
                io_threads: int = 8) -> DecodeStep:
    """Simulate one decode step (all layers) in ``mode``."""
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}, expected one of {', '.join(MODES)}")
    if batch < 1 or context < 1 or not 0 < kv_fraction <= 1:
        raise InputError(f"batch and context must be >= 1 and kv_fraction in (0, 1], got "
                         f"{batch}, {context}, {kv_fraction}")
    machine.require("gpu")
    hw, e = machine.hardware, dtype_bytes
    gpu_rate, hbm_bw = rate_of(hw, GPU_RATES), machine.gpu.read_bandwidth
    layer_w = model.layer_params() * e
    lin = sum(a * b for a, b in model.linear_shapes().values())
    kv_tok = 2 * model.kv_size * e                      # per layer per sequence
    kv = batch * context * kv_tok * kv_fraction
    hidden = batch * model.hidden * e
    att_flops = 4.0 * batch * context * model.q_size * kv_fraction
    t_lin = max(2.0 * batch * lin / gpu_rate, layer_w / hbm_bw)
    host, gpu = machine.host.name, machine.gpu.name
    fits = True
    chains: list[list[tuple]] = []
    if mode == "gpu":
        total = model.layers * (layer_w + batch * context * kv_tok)
        fits = total <= machine.gpu.total_capacity_bytes
        chains.append([("gpu", t_lin, 0, ""),
                       ("gpu", max(att_flops / gpu_rate, kv / hbm_bw), 0, "")])
    elif mode == "ssd_offload":
        machine.require("disk", "nvme", "pcie")
        nv, pc, dev = machine.nvme, machine.pcie, machine.disk
        read_s = max(dev.read_time(kv, io_chunk, io_threads), nv.occupancy(kv, "ssd", host))
        new_kv = batch * kv_tok
        chains.append([("ssd", read_s, kv, "ssd>host"),
                       ("pcie_h2d", pc.occupancy(kv, host, gpu), kv, "host>hbm")])
        chains.append([("pcie_d2h", pc.occupancy(new_kv, gpu, host), new_kv, "hbm>host"),
                       ("ssd", dev.read_time(new_kv, new_kv, 1, write=True), new_kv,
                        "host>ssd")])
        chains.append([("gpu", t_lin, 0, ""),
                       ("gpu", max(att_flops / gpu_rate, kv / hbm_bw), 0, "")])
    else:
        machine.require("disk", "p2p")
        if machine.disk_level.flash.compute is None:
            raise InputError(f"hardware {hw.name!r}: the ssd has no flash.compute unit, so it "
                             "cannot run attention in storage")
        p2p, dev = machine.p2p, machine.disk
        csd_rate = rate_of(hw, CSD_RATES)
        internal = dev.channels * dev.channel_bandwidth
        t_csd = max(kv / internal + dev.latency_to_first_byte_s, att_flops / csd_rate)
        chains.append([("gpu", t_lin, 0, ""),
                       ("p2p", p2p.transfer_time(3 * hidden, gpu, "ssd"), 3 * hidden,
                        "hbm>ssd"),
                       ("csd", t_csd, kv, "flash>csd"),
                       ("p2p", p2p.transfer_time(hidden, "ssd", gpu), hidden, "ssd>hbm")])
    it = simulate_iteration(chains, RESOURCES)
    n = model.layers
    return DecodeStep(mode, batch, context, it.time_s * n,
                      {k: v * n for k, v in it.busy_s.items()},
                      {k: v * n for k, v in it.bytes.items()}, fits)


def sweep(model: ModelSpec, machine: OffloadMachine, batches, contexts, **kw) -> dict:
    """{(mode, batch, context): DecodeStep} over the grid, for every mode."""
    return {(m, b, c): decode_step(model, machine, m, b, c, **kw)
            for m in MODES for b in batches for c in contexts}


def crossover_context(model: ModelSpec, machine: OffloadMachine, batch: int,
                      lo: int = 16, hi: int = 1 << 20, **kw) -> int | None:
    """Smallest context (bisection on integers) at which InstInfer's throughput exceeds the
    SSD-offload baseline's, or None if it does not within [lo, hi]."""
    def better(c):
        return (decode_step(model, machine, "instinfer", batch, c, **kw).throughput
                > decode_step(model, machine, "ssd_offload", batch, c, **kw).throughput)
    if better(lo):
        return lo
    if not better(hi):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if better(mid):
            hi = mid
        else:
            lo = mid
    return hi
