"""FlexGen-style offloading (Sheng et al., ICML 2023): placement of weights, KV cache and
activations over GPU / host / disk, and the zig-zag block schedule (Algorithm 1).

One source of truth: :func:`iteration_chains` lists, for one iteration ``(token i, layer j,
GPU batch k)`` of Algorithm 1, the transfers and computations it performs as *chains* (steps
that run one after another, e.g. disk -> host -> GPU) of ``(resource, seconds, bytes, route)``
steps. The simpy schedule (:mod:`.flexgen_sim`) runs the chains of each iteration concurrently on
the resources ``gpu``, ``cpu``, ``pcie_h2d``, ``pcie_d2h`` and ``ssd`` and synchronises at the
end of the iteration, as Algorithm 1 does; the policy search (:mod:`.flexgen_search`) takes the
same chains with numpy arrays for the placement fractions and uses the per-iteration maximum of
the resource loads and chain lengths, a lower bound of the simulated time.

Per layer (``e`` bytes per element): weights ``W`` = all parameters of one layer (linear
weights, biases, norms); new KV per sequence and token ``2·kv_size·e``; hidden state per
sequence and token ``hidden·e``. Iterations wrap around (batch k stores batch k-1's outputs and
loads batch k+1's inputs, modulo the block), so each GPU batch's data moves exactly once per
layer and all iterations of one (stage, context) are identical.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..llm.model import ModelSpec
from .machine import OffloadMachine, rate_of

__all__ = ["Policy", "FlexGenCosts", "iteration_chains", "RESOURCES", "GPU_RATES", "CPU_RATES"]

RESOURCES = ("gpu", "cpu", "pcie_h2d", "pcie_d2h", "ssd")
GPU_RATES = ("fp16_mma", "fp16_wgmma", "bf16_mma", "fp16_fma")
CPU_RATES = ("cpu_fp32",)


@dataclass(frozen=True)
class Policy:
    """A FlexGen policy: GPU batch size, GPU batches per block and nine placement fractions
    (weights ``w*``, KV cache ``c*``, activations ``h*`` on gpu / cpu(host) / disk), and whether
    decode attention runs on the CPU where the cache lives (FlexGen's ``--cpu``)."""

    gpu_batch: int
    num_gpu_batches: int
    wg: float
    wc: float
    cg: float
    cc: float
    hg: float
    hc: float
    cpu_attention: bool = False

    def __post_init__(self) -> None:
        if self.gpu_batch < 1 or self.num_gpu_batches < 1:
            raise InputError(f"policy: gpu_batch and num_gpu_batches must be >= 1, got "
                             f"{self.gpu_batch}, {self.num_gpu_batches}")
        for a, b, what in ((self.wg, self.wc, "weights"), (self.cg, self.cc, "cache"),
                           (self.hg, self.hc, "activations")):
            if a < 0 or b < 0 or a + b > 1 + 1e-9:
                raise InputError(f"policy: {what} fractions on gpu and cpu must be >= 0 and sum "
                                 f"to at most 1 (the rest is on disk), got {a}, {b}")
        if self.cpu_attention and self.cg > 0:
            raise InputError(f"policy: cpu_attention needs the KV cache off the GPU (cache "
                             f"gpu fraction 0), got {self.cg}")

    @property
    def wd(self) -> float:
        return max(0.0, 1.0 - self.wg - self.wc)

    @property
    def cd(self) -> float:
        return max(0.0, 1.0 - self.cg - self.cc)

    @property
    def hd(self) -> float:
        return max(0.0, 1.0 - self.hg - self.hc)

    @property
    def block(self) -> int:
        """Effective batch: sequences generated together."""
        return self.gpu_batch * self.num_gpu_batches

    def to_dict(self) -> dict:
        return {"gpu_batch": self.gpu_batch, "num_gpu_batches": self.num_gpu_batches,
                "block": self.block,
                "weights": {"gpu": self.wg, "cpu": self.wc, "disk": round(self.wd, 12)},
                "cache": {"gpu": self.cg, "cpu": self.cc, "disk": round(self.cd, 12)},
                "activations": {"gpu": self.hg, "cpu": self.hc, "disk": round(self.hd, 12)},
                "cpu_attention": self.cpu_attention}


@dataclass(frozen=True)
class FlexGenCosts:
    """Rates of the machine as the schedule uses them (SI units)."""

    gpu_flops: float
    gpu_mem_bw: float
    cpu_flops: float
    host_mem_bw: float
    h2d_bw: float
    d2h_bw: float
    pcie_overhead_s: float
    disk_read_bw: float
    disk_write_bw: float
    disk_overhead_s: float

    @classmethod
    def of(cls, machine: OffloadMachine, io_chunk_bytes: int, io_threads: int) -> "FlexGenCosts":
        machine.require("gpu", "pcie")
        hw = machine.hardware
        link = machine.pcie.link
        host, gpu = machine.host.name, machine.gpu.name
        if machine.disk is not None:
            dev = machine.disk
            read = dev.throughput(io_chunk_bytes, io_threads)
            write = dev.throughput(io_chunk_bytes, io_threads, write=True)
            if machine.nvme is not None:
                read = min(read, machine.nvme.link.bandwidth("ssd", host))
                write = min(write, machine.nvme.link.bandwidth(host, "ssd"))
            disk_overhead = dev.latency_to_first_byte_s + (machine.nvme.link.overhead_s
                                                           if machine.nvme else 0.0)
        else:
            read = write = float("inf")
            disk_overhead = 0.0
        return cls(gpu_flops=rate_of(hw, GPU_RATES), gpu_mem_bw=machine.gpu.read_bandwidth,
                   cpu_flops=rate_of(hw, CPU_RATES), host_mem_bw=machine.host.read_bandwidth,
                   h2d_bw=link.bandwidth(host, gpu), d2h_bw=link.bandwidth(gpu, host),
                   pcie_overhead_s=link.overhead_s + link.latency_s, disk_read_bw=read,
                   disk_write_bw=write, disk_overhead_s=disk_overhead)


def _xfer(route: str, nbytes: Any, c: FlexGenCosts):
    """Steps of moving ``nbytes`` along ``route`` (host->gpu, gpu->host, disk->host, ...)."""
    on = np.asarray(nbytes) > 0
    steps = {
        "h2d": [("pcie_h2d", nbytes / c.h2d_bw + on * c.pcie_overhead_s, nbytes, "host>hbm")],
        "d2h": [("pcie_d2h", nbytes / c.d2h_bw + on * c.pcie_overhead_s, nbytes, "hbm>host")],
        "dread": [("ssd", nbytes / c.disk_read_bw + on * c.disk_overhead_s, nbytes, "ssd>host")],
        "dwrite": [("ssd", nbytes / c.disk_write_bw + on * c.disk_overhead_s, nbytes,
                    "host>ssd")],
    }
    out = []
    for part in route.split("+"):
        out += steps[part]
    return out


def iteration_chains(model: ModelSpec, p: Any, c: FlexGenCosts, stage: str, context: int,
                     dtype_bytes: float = 2.0) -> list[list[tuple]]:
    """The chains of one iteration of Algorithm 1 (see the module docstring).

    ``p`` is a :class:`Policy` or any object with the same fields holding numpy arrays (the
    search); ``stage`` is ``"prefill"`` (``context`` = prompt length) or ``"decode"``
    (``context`` = tokens already cached). Each step is ``(resource, seconds, bytes, route)``.
    """
    e = dtype_bytes
    gbs, ng = p.gpu_batch, p.num_gpu_batches
    wd, cd, hd = 1 - p.wg - p.wc, 1 - p.cg - p.cc, 1 - p.hg - p.hc
    layer_bytes = model.layer_params() * e
    lin_params = sum(a * b for a, b in model.linear_shapes().values())
    tokens = context if stage == "prefill" else 1
    kv_new = gbs * tokens * 2 * model.kv_size * e            # KV this batch adds
    kv_old = 0 if stage == "prefill" else gbs * context * 2 * model.kv_size * e
    hidden = gbs * tokens * model.hidden * e
    cpu_att = bool(getattr(p, "cpu_attention", False)) and stage == "decode"
    chains: list[list[tuple]] = []
    # load_weight(i, j+1, k): this batch's share of the next layer's weights
    chains.append(_xfer("h2d", p.wc * layer_bytes / ng, c))
    chains.append(_xfer("dread+h2d", wd * layer_bytes / ng, c))
    # store_activation(k-1) / load_activation(k+1)
    chains.append(_xfer("d2h", p.hc * hidden, c))
    chains.append(_xfer("d2h+dwrite", hd * hidden, c))
    chains.append(_xfer("h2d", p.hc * hidden, c))
    chains.append(_xfer("dread+h2d", hd * hidden, c))
    # store_cache(k-1) / load_cache(k+1)
    if cpu_att:            # the cache lives and is used on the host; only the disk part moves
        chains.append(_xfer("dwrite", cd * kv_new, c))
        chains.append(_xfer("dread", cd * kv_old, c))
    else:
        chains.append(_xfer("d2h", p.cc * kv_new, c))
        chains.append(_xfer("d2h+dwrite", cd * kv_new, c))
        chains.append(_xfer("h2d", p.cc * kv_old, c))
        chains.append(_xfer("dread+h2d", cd * kv_old, c))
    # compute(i, j, k): linear layers on the GPU (roofline of FLOPs and weight reads)
    lin_flops = 2.0 * gbs * tokens * lin_params
    t_lin = np.maximum(lin_flops / c.gpu_flops, layer_bytes / c.gpu_mem_bw)
    att_flops = 4.0 * gbs * tokens * (context if stage == "decode" else context) * model.q_size
    kv_all = kv_old + kv_new
    compute = [("gpu", t_lin, 0, "")]
    if cpu_att:
        # q, k, v to the host; attention over the host-resident cache; output back
        qkv = 3 * hidden
        t_att = np.maximum(att_flops / c.cpu_flops, kv_all / c.host_mem_bw)
        compute += _xfer("d2h", qkv, c) + [("cpu", t_att, 0, "")] + _xfer("h2d", hidden, c)
    else:
        scores = 0 if stage == "decode" else gbs * model.heads * tokens * tokens * e
        compute.append(("gpu", np.maximum(att_flops / c.gpu_flops,
                                          (kv_all + 2 * scores) / c.gpu_mem_bw), 0, ""))
    chains.append(compute)
    return [ch for ch in chains if ch]
