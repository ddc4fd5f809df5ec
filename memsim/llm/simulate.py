"""``memsim run`` for ``workload.kind: llm``: analyse the model on the hardware and simulate its
matmuls and attention through the engine.

Each distinct GEMM or attention shape is turned into an ordinary run configuration (``kind:
gemm`` with ``gemm_tiled``, ``kind: attention`` with the workload's attention schedule) and
simulated once with :func:`memsim.simulate.simulate` (the cache lives in
:func:`memsim.llm.analysis.analyse`). Norms, activations, residual adds, rotary and embeddings
are memory-bound kernels the tile engine has no schedule for: each costs the preset's launch
overhead plus its bytes at the HBM bandwidth (checked against whole steps measured on an H100
and an H200: :mod:`memsim.validation.llm_steps`). Weight-quantized linear
layers (``weight_quant`` with 4 or 8 bits) run as mixed-dtype GEMMs: B (the weight) in int4 /
int8 with its group scales and zero points (:func:`gemm_weight_format`), A and C in
``act_dtype``; 2- and 3-bit weights have no engine dtype and keep their roofline time. Without
the engine installed, the run is roofline-only.

Granularity: the configuration's ``simulation.granularity`` if given, else ``block`` (the
tile model's step simulation in numba: tile-level times and bytes, as fast as ``wave`` on the
shipped LLM examples, about 1 s; ``wave`` is up to 45% off tile-level time on GQA decode
attention, docs/schedules.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..errors import InputError, SramFitError
from ..result import LevelTraffic, Result, Roofline
from .analysis import LlmReport, analyse, decode_contexts
from .operators import ATTENTION_KINDS, MEMORY_KERNEL_KINDS, Operator, attention_operators
from .roofline import RooflineMachine, roofline, stage_totals
from .workload import LlmWorkload, WeightQuant

__all__ = ["LlmResult", "simulate_llm", "engine_simulator", "run_llm", "gemm_weight_format"]

DEFAULT_GRANULARITY = "block"


@dataclass(frozen=True)
class LlmResult(Result):
    """A ``Result`` (contract keys) with the LLM report: ``to_dict()['llm']`` holds the
    per-operator rows and totals; ``to_table()`` prints the per-operator tables."""

    llm: LlmReport | None = field(default=None, compare=False)

    def to_dict(self) -> dict:
        out = super().to_dict()
        if self.llm is not None:
            out["llm"] = self.llm.to_dict()
        return out

    def to_table(self) -> str:
        return self.llm.to_table() if self.llm is not None else super().to_table()


def fa2_num_splits(batch_heads: int, sms: int, head_dim: int, seq_k: int,
                   max_splits: int = 128) -> int:
    """FlashAttention-2's split-KV count for one decode query per (batch, head)
    (``num_splits_heuristic`` of flash_api.cpp, called with twice the SM count: two CTAs per
    SM): no split once the grid nearly fills the GPU, else the smallest split count whose
    wave efficiency is within 85% of the best. The H100 decode measurements show exactly
    these counts in ``flash_fwd_splitkv_kernel``'s gridDim.y (8 at 1K keys, 7 at 4K-32K for
    32 heads; tests/llm/test_llm_decode_h100.py)."""
    slots = 2 * sms
    if batch_heads >= 0.8 * slots:
        return 1
    block_n = 256 if head_dim <= 64 else 128 if head_dim <= 128 else 64
    n_blocks = -(-seq_k // block_n)
    top = min(max_splits, slots, n_blocks)

    def eligible(s):
        return s == 1 or -(-n_blocks // s) != -(-n_blocks // (s - 1))
    eff = {}
    for s in range(1, top + 1):
        if eligible(s):
            waves = batch_heads * s / slots
            eff[s] = waves / math.ceil(waves)
    best = max(eff.values())
    return next(s for s in sorted(eff) if eff[s] >= 0.85 * best)


def fa2_decode_block_k(head_dim: int) -> int:
    """kBlockN of FlashAttention-2's split-KV kernel for ``head_dim``."""
    return 256 if head_dim <= 64 else 128 if head_dim <= 128 else 64


#: kBlockM of FlashAttention-2's split-KV kernel (every head dim: ``run_mha_fwd_splitkv_dispatch``)
FA2_SPLITKV_BLOCK_M = 64


def fa2_fwd_tiles(head_dim: int) -> tuple[int, int]:
    """(kBlockM, kBlockN) of FlashAttention-2's forward kernel without dropout on sm80/sm90
    (``run_mha_fwd_hdim*`` of flash_fwd_launch_template.h; sm86/sm89 use other tiles for some
    head dims, not modelled). The H100 data shows (128, 128) at d = 64 and (128, 64) at
    d = 128."""
    if head_dim <= 64:
        return 128, 128
    if head_dim <= 128:
        return 128, 64
    if head_dim <= 160:
        return 128, 32
    if head_dim <= 224:
        return 128, 64
    return 64, 64


def fa2_prefill_schedule(head_dim: int, dtype: str, rates) -> dict:
    """``flash2`` options for FlashAttention-2's forward kernel (prefill): its tile
    (:func:`fa2_fwd_tiles`), mma.sync (``{dtype}_mma`` where ``rates`` has it) on the whole
    query tile (``compute_rows``), a two-deep cp.async pipeline: the mapping of the measured
    SDPA flash kernels (memsim.validation.mapping)."""
    rows, block_k = fa2_fwd_tiles(head_dim)
    return {"block_q": rows, **_fa2_kernel(rows, block_k, dtype, rates)}


def _fa2_kernel(rows: int, block_k: int, dtype: str, rates) -> dict:
    """The options FA2's kernels share: the key block, MMAs on all ``rows`` of the query tile,
    two stages, key blocks visited from the last one down, mma.sync where the hardware has it
    for ``dtype``."""
    out = {"block_k": block_k, "compute_rows": rows, "stages": 2, "kv_order": "reverse"}
    if f"{dtype}_mma" in rates:
        out["instruction"] = f"{dtype}_mma"
    return out


def fa2_decode_schedule(batch_heads: int, sms: int, head_dim: int, seq_k: int, dtype: str,
                        rates) -> dict:
    """``flash_decoding`` options for FlashAttention-2's kernel of one decode query per
    (batch, head): its split rule (:func:`fa2_num_splits`); with a split, the split-KV kernel's
    tile (64 query rows x kBlockN), without one, the forward kernel's
    (:func:`fa2_fwd_tiles`); its tensor-core MMAs run on the whole padded query tile
    (``compute_rows``) with mma.sync (``{dtype}_mma`` where ``rates`` has it); a two-deep
    cp.async pipeline (memsim's two K+V stages give the 2 blocks per SM FA2's registers allow
    on the H100; where they do not fit in SRAM, the simulator runs one stage: FA2's single K
    and V tiles). These are what the measured H100 and H200 kernels show
    (tests/llm/test_llm_decode_h100.py)."""
    splits = fa2_num_splits(batch_heads, sms, head_dim, seq_k)
    if splits > 1:
        rows, block_k = FA2_SPLITKV_BLOCK_M, fa2_decode_block_k(head_dim)
    else:
        rows, block_k = fa2_fwd_tiles(head_dim)
    return {"splits": splits, **_fa2_kernel(rows, block_k, dtype, rates)}


#: engine dtype of a quantized weight of ``bits`` bits (2- and 3-bit have none)
QUANT_DTYPES = {4: "int4", 8: "int8"}


def gemm_weight_format(quant: WeightQuant | None) -> dict | None:
    """The ``gemm`` workload keys of a linear layer's weight format: ``{}`` for unquantized
    weights, ``b_dtype``/``b_group_size``/``b_scale_dtype``/``b_zero_point`` for group-wise
    quantized ones (groups along the input dimension k, the zero point in ``bits`` bits as
    :meth:`WeightQuant.bytes_per_weight` counts it), None when the engine has no dtype of
    that width (2 or 3 bits: roofline only)."""
    if quant is None:
        return {}
    dtype = QUANT_DTYPES.get(quant.bits)
    if dtype is None:
        return None
    return {"b_dtype": dtype, "b_group_size": quant.group, "b_scale_dtype": quant.scale_dtype,
            "b_zero_point": quant.zero_point}


def engine_simulator(hardware: Any, granularity: str = DEFAULT_GRANULARITY,
                     weight_quant: WeightQuant | None = None):
    """An operator simulator over :func:`memsim.simulate.simulate`; linear layers run with
    the weight format of ``weight_quant`` (the LM head too, unless it is tied to the
    unquantized embedding)."""
    weight_format = gemm_weight_format(weight_quant)
    from ..simulate import simulate
    hw_data = hardware.to_dict()
    sms = hardware.gpu.sms if getattr(hardware, "gpu", None) is not None else 0
    bandwidth = hardware.memory("hbm").read_bandwidth
    launch = hardware.gpu.launch_overhead_s if sms else 0.0
    rates = {name for unit in getattr(hardware, "compute", ()) for name in unit.rates}
    whole: dict = {}

    def run(workload: dict, schedule: dict) -> Result:
        return simulate({"hardware": hw_data, "workload": workload, "schedule": schedule,
                         "simulation": {"granularity": granularity}})

    def attention(b, heads, kv_heads, seq_q, seq_k, d, dtype, schedule, causal=True,
                  window=None) -> Result:
        """``window``: the model's sliding window; a decode step's keys are already within it
        (the engine runs it without one), but FA2 then keeps the GQA heads apart."""
        key = (b, heads, kv_heads, seq_q, seq_k, d, dtype, schedule, causal, window)
        if key not in whole:
            sliding, window = window is not None, None if seq_q == 1 else window
            sched = {"kind": schedule}
            if schedule == "flash_decoding" and seq_q == 1 and sms:
                if heads > kv_heads and not sliding:
                    # FA2 runs a GQA group's single queries as the query rows of its K/V
                    # head (flash_api.cpp's seqlenq_ngroups_swapped; not with a window)
                    heads, seq_q, causal = kv_heads, heads // kv_heads, False
                # FA2's own kernel: split rule, tiles, mma.sync on padded rows, 2 stages
                sched.update(fa2_decode_schedule(b * heads, sms, d, seq_k, dtype, rates))
            elif schedule == "flash2" and sms:
                sched.update(fa2_prefill_schedule(d, dtype, rates))     # FA2's forward kernel
            wl = {"kind": "attention", "batch": b, "heads": heads, "kv_heads": kv_heads,
                  "seq_q": seq_q, "seq_k": seq_k, "head_dim": d, "causal": causal,
                  "window": window, "dtype": dtype}
            whole[key] = run_fitting(wl, sched)
        return whole[key]

    def run_fitting(wl: dict, sched: dict) -> Result:
        """Run; on a GPU with less shared memory (RTX 4090, T4) fall back to one stage (FA2's
        single K and V tiles), then to the key block the schedule fits in SRAM itself."""
        tries = [sched]
        if sched.get("stages") == 2:
            tries.append({**sched, "stages": 1})
        if "block_k" in sched:
            tries.append({k: v for k, v in sched.items()
                          if k not in ("block_q", "block_k", "compute_rows")} | {"stages": 1})
        for s in tries[:-1]:
            try:
                return run(wl, s)
            except SramFitError:
                pass
        return run(wl, tries[-1])

    def simulate_op(op: Operator) -> float | None:
        p = op.params
        if op.kind in MEMORY_KERNEL_KINDS:
            # one memory-bound kernel, costed as the engine costs a kernel launch plus its
            # bytes at the HBM bandwidth (the engine has no schedule for these)
            return launch + op.bytes / bandwidth if sms else None
        if op.kind == "linear":
            if "m" not in p:
                return None
            fmt = weight_format
            if fmt and p.get("tied"):
                fmt = {}                      # the tied LM head reads the embedding
            if fmt is None:
                return None                   # no engine dtype for the weights
            # tiles as a GEMM library picks them (skinny tiles and deep pipelines for decode;
            # gemm_tiled's tiling: library, checked against cuBLAS on the H100 data)
            return run({"kind": "gemm", "m": p["m"], "n": p["n"], "k": p["k"],
                        "dtype": op.shape[-1], **fmt},
                       {"kind": "gemm_tiled", "tiling": "library"}).time_s
        if op.kind not in ATTENTION_KINDS or not op.shape:
            return None
        extra = op.params.get("extra_bytes", 0.0) / bandwidth    # policy score metadata
        if op.shape[0] == "relay":
            # the batch's queries over the shared system prompt (one sequence, non-causal),
            # then each sequence's query over its own tokens
            _, b, heads, kv_heads, system, own, d, dtype, schedule = op.shape
            t = attention(b, heads, kv_heads, 1, own, d, dtype, schedule).time_s
            if system:
                t += attention(1, heads, kv_heads, b, system, d, dtype,
                               "flash2" if b > 1 else schedule, causal=False).time_s
            return t + extra
        _, b, heads, kv_heads, seq_q, seq_k, d, window, dtype, schedule = op.shape[:10]
        result = attention(b, heads, kv_heads, seq_q, seq_k, d, dtype, schedule, window=window)
        if op.kind == "attention":
            return result.time_s + extra
        # standard schedule: kernels S = QK^T, softmax, O = PV map to the three operators
        part = {"matmul_qk": 0, "softmax": 1, "matmul_sv": 2}[
            op.kind if op.kind == "softmax" else f"matmul_{op.shape[-1]}"]
        kernels = result.kernels
        if len(kernels) == 3:
            return float(kernels[part].get("time_s", result.time_s / 3))
        return result.time_s / 3
    return simulate_op


def run_llm(wl: LlmWorkload, hardware: Any, *, simulate: bool = True,
            granularity: str = DEFAULT_GRANULARITY, check: bool = True) -> LlmReport:
    """Analyse ``wl`` on ``hardware`` (roofline from its HBM bandwidth and peak rates; footprint
    checked against its ``hbm`` capacity), simulating operators when the engine is available."""
    machine = RooflineMachine.from_hardware(hardware, wl.act_dtype)
    capacity = (hardware.memory("hbm").total_capacity_bytes if hardware.has_memory("hbm")
                else None)
    sim = engine_simulator(hardware, granularity, wl.weight_quant) if simulate else None
    return analyse(wl, machine, capacity, sim, check=check)


def _decode_totals(report: LlmReport) -> dict:
    """FLOPs and HBM read/write bytes of all decode steps (roofline convention)."""
    wl, machine = report.workload, report.machine
    fixed = [c for c in report.decode_first if c.op.kind not in ATTENTION_KINDS]
    base = stage_totals(fixed)
    totals = {k: base[k] * wl.gen_len for k in ("flops", "read_bytes", "write_bytes")}
    for ctx in decode_contexts(wl):
        t = stage_totals(roofline(attention_operators(wl, "decode", 1, int(ctx)), machine))
        for k in totals:
            totals[k] += t[k]
    return totals


def simulate_llm(config: Any) -> LlmResult:
    """The ``llm`` workload kind's simulate function (``RunConfig -> Result``)."""
    wl: LlmWorkload = config.workload
    hw = config.hardware
    if not hw.has_memory("hbm"):
        raise InputError(f"hardware {config.hardware_name!r} has no 'hbm' level to hold the "
                         "weights and KV cache")
    asked = (config.data.get("simulation") or {}).get("granularity")
    report = run_llm(wl, hw, granularity=asked or DEFAULT_GRANULARITY)
    prefill = stage_totals(report.prefill)
    decode = _decode_totals(report)
    roof_time = report.prefill_time_s + report.decode_time_s
    time_s = (report.sim_prefill_time_s + report.sim_decode_time_s if report.simulated
              else roof_time)
    fp = report.footprint
    levels = {"hbm": LevelTraffic(round(prefill["read_bytes"] + decode["read_bytes"]),
                                  round(prefill["write_bytes"] + decode["write_bytes"]),
                                  round(fp.total), round(fp.capacity))}
    # what binds: the share of roofline time spent in memory-bound operators
    first_mem = sum(c.total_time_s for c in report.decode_first if c.bound == "memory")
    memory_bound_time = (sum(c.total_time_s for c in report.prefill if c.bound == "memory")
                         + report.decode_time_s * first_mem / report.tpot_s())
    bound = "hbm" if memory_bound_time >= roof_time / 2 else "compute"
    return LlmResult(
        memsim_version=__version__, hardware=config.hardware_name, workload=wl.to_dict(),
        schedule={"kind": "llm", "prefill_attention": wl.prefill_schedule,
                  "decode_attention": wl.decode_schedule,
                  "simulated": report.simulated},
        time_s=time_s, flops=prefill["flops"] + decode["flops"], levels=levels,
        roofline=Roofline(roof_time, bound, "hbm" if bound == "hbm" else "tensor"),
        llm=report)
