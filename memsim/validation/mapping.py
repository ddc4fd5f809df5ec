"""Map each measured GPU case to a memsim run configuration, from the evidence in the data.

Attention kernels compute whole query tiles (padding included), so every attention mapping
sets ``compute_rows`` to the kernel's tile height (kBlockM, kQueriesPerBlock, 16 for sm80
wmma, 128 for the sm90 cuDNN CTA).

The evidence is what Nsight Compute recorded: kernel names (template arguments and name
fields reveal tile sizes, stage counts and instruction classes), grid sizes (split counts) and
shared memory per block. Every mapping is an ordinary run configuration: a user can write the
same ``schedule`` section for a kernel that nobody measured (see docs/validation.md).

========================  ============================================================
measured implementation   memsim mapping
========================  ============================================================
SDPA flash (FA2)          ``flash2``, block_q/block_k = kBlockM/kBlockN of
                          ``Flash_fwd_kernel_traits<d, M, N, warps>``, ``bf16_mma``
                          (sm80 mma.sync), stages 2 (cp.async prefetch of the next
                          K/V tile; gives the 2 blocks/SM the 255 registers allow),
                          ``kv_order: reverse`` (its key-block loop runs downwards)
flash split-KV decode     ``flash_decoding``, splits = gridDim.y of
                          ``flash_fwd_splitkv_kernel``, block_k = kBlockN, reverse order
SDPA efficient (cutlass)  ``flash2``, block_q/block_k = kQueriesPerBlock/kKeysPerBlock of
                          ``AttentionKernel<bf16, Sm80, aligned, Q, K, ...>``, ``bf16_mma``,
                          ``reload_q`` (its first GEMM's mainloop reads the Q tile from
                          global memory again for every key block)
SDPA cuDNN (sm90)         ``flash2`` with ``bf16_wgmma``, block_q = 2 consumer warpgroups x 64
                          rows, block_k = 128 (``..._64x128x{d}_...``), stages closest to
                          the shared memory per block (3 at d=128, 4 at d=64)
cuDNN decode (sm80)       ``flash_decoding`` (split over gridDim.x with a lean reduction) or
                          ``flash2`` block_q 16, block_k 128, ``bf16_mma``
SDPA math                 the sequence of kernels it runs (:mod:`.math_backend`): casts,
                          scale/mask/softmax passes (memory-bound), fp32 SIMT GEMMs
                          through ``gemm_tiled`` with ``fp32_fma``
cuBLAS GEMM (nvjet)       ``gemm_tiled`` with ``nvjet_sm90_tst_{M}x{N}_{K}x{stages}``:
                          cuBLAS is column-major, so tile_n = M, tile_m = N; ``bf16_wgmma``;
                          ``raster: auto``, ``swizzle`` the calibrated GEMM_SWIZZLE;
                          ``_splitK_`` kernels: ``split_k`` = CTAs / output tiles
device / host copies      :mod:`memsim.validation.copies` (memory-bound analytic model over
                          the preset's HBM bandwidth, launch overhead and PCIe link)
========================  ============================================================
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import InputError

__all__ = ["CaseModel", "map_case", "FAMILY_OF", "model_family", "DeviceProfile", "DEVICES",
           "device_profile"]

_FA2_TRAITS = re.compile(r"Flash_fwd_kernel_traits<(\d+), (\d+), (\d+), (\d+)")
_CUTLASS = re.compile(r"AttentionKernel<[^,]+, arch::Sm80, \d+, (\d+), (\d+), (\d+)")
_CUDNN = re.compile(r"_(\d+)x(\d+)x(\d+)_\dx\dx\d")
_NVJET = re.compile(r"nvjet_sm90_tst_(\d+)x(\d+)_(\d+)x(\d+)_(?:(\d+)x(\d+)_)?")

# cuDNN sm90 flash fprop: 384 threads = 1 producer + 2 consumer warpgroups of 64 rows each.
CUDNN_SM90_ROWS_PER_WARPGROUP = 64
CUDNN_SM90_CONSUMERS = 2
# sm80 flash kernels (FA2, cutlass fmha) prefetch the next K (V) tile with cp.async while the
# current V (K) tile is used: a two-deep pipeline. memsim's SRAM for it (Q + 2 x (K+V)) gives
# 2 blocks per SM, the occupancy the 255 (FA2) / 128 x 256 (fmha d=128) registers allow.
FA2_STAGES = 2
# FA2's forward and split-KV kernels visit their key blocks from the last one down
# (flash_fwd_kernel.h: n_block from n_block_max - 1 to n_block_min; the masked diagonal block
# first). cutlass fmha runs forward (iter_key_start from 0); cuDNN's order is not known.
FA2_KV_ORDER = "reverse"
# map nvjet's cluster field to gemm_tiled's cluster_m/cluster_n (TMA multicast)
MULTICAST = True
# cuBLAS's persistent tile scheduler visits its cluster grid in strips of a swizzle width that
# the kernel name does not give. Calibrated once: the width (of 1, 2, 4, 8, 16) whose HBM
# bytes best reproduce the calibration split's GEMMs with m >= 1024 (sum of absolute errors;
# memsim.validation.calibrate.gemm_swizzle). Used by every nvjet mapping.
GEMM_SWIZZLE = 8
# The committed times come from do_bench, which writes a 256 MB buffer before each call:
# every timed kernel starts with L2 full of it and pays the write-back of the dirty part it
# evicts. Bytes dirty, measured by each device's L2 probes (a 256 MB read right after that
# flush writes back 24.1 MB on the H100, 28.6 MB on the H200: memsim.validation.calibrate,
# l2_dirty_measured; on the H100 the event-vs-Nsight timing of the calibration split gives
# 26.9 MB, l2_dirty_after_flush). Tiled cases simulate with it as
# ``simulation.l2_dirty_at_start``.
L2_DIRTY_AFTER_FLUSH = 24.1e6


@dataclass(frozen=True)
class DeviceProfile:
    """What predicting one device's measured data needs beyond the kernels: the hardware
    preset and the bytes do_bench's flush leaves dirty in its L2."""

    preset: str
    l2_dirty_after_flush: float


DEVICES = {"h100": DeviceProfile("h100-sxm", L2_DIRTY_AFTER_FLUSH),
           "h200": DeviceProfile("h200", 28.6e6)}
"""The devices with committed measurements (``memsim/validation/data/<device>``)."""


def device_profile(device: str) -> DeviceProfile:
    """The :class:`DeviceProfile` of a device with committed data, or a clear error."""
    if device not in DEVICES:
        raise InputError(f"no hardware preset is known for measured device {device!r}; "
                         f"known: {', '.join(sorted(DEVICES))} (name a preset or YAML file "
                         f"with --hardware)")
    return DEVICES[device]


@dataclass(frozen=True)
class CaseModel:
    """How one case is predicted: ``kind`` is ``tiled`` (``config`` is a memsim run
    configuration), ``copy`` (``copy`` holds direction and bytes) or ``math`` (the math
    backend's kernel sequence, :mod:`.math_backend`, from ``case``); ``family`` is the
    kernel family the error summary groups by (e.g. ``prefill_flash``)."""

    case_id: str
    family: str
    kind: str
    config: Mapping[str, Any] | None = None
    copy: Mapping[str, Any] | None = None
    evidence: str = ""
    case: Any = field(default=None, compare=False, repr=False)   # the measured case (``math``)
    hardware: Any = "h100-sxm"     # preset name, YAML path or mapping (``copy`` and ``math``)


def model_family(case) -> str:
    """The summary family of a case: ``prefill_<backend>``, ``decode_<backend>``, ``gemm``,
    ``gemm_skinny`` (m <= 256), ``copy_d2d``, ``copy_pcie``; others are not predicted."""
    f = case.family
    if f == "attention_prefill":
        return f"prefill_{case.params['backend']}"
    if f == "attention_decode":
        return f"decode_{case.params['backend']}"
    if f == "gemm":
        return "gemm_skinny" if case.params["m"] <= 256 else "gemm"
    if f in ("copy_d2d", "copy_d2d_kernel"):
        return "copy_d2d"
    if f in ("copy_h2d", "copy_d2h"):
        return "copy_pcie"
    return f


FAMILY_OF = model_family


def _main_kernel(case):
    ks = case.kernels or ()
    if not ks:
        raise InputError(f"case {case.id!r} has no profiled kernels: its tile sizes are unknown")
    return max(ks, key=lambda k: k.gpu_time_s)


def _fields(pattern, text: str, case, kernel, what: str):
    """The match of ``pattern`` in a kernel's name (``text``), or an error naming the case."""
    m = pattern.search(text)
    if not m:
        raise InputError(f"case {case.id!r}: no {what} in {kernel.name!r}")
    return m


def _attention_workload(p) -> dict:
    return {"kind": "attention", "batch": p["batch"], "heads": p["heads"],
            "kv_heads": p.get("kv_heads", p["heads"]), "seq_q": p["seq_q"], "seq_k": p["seq_k"],
            "head_dim": p["head_dim"], "causal": bool(p["causal"]),
            "dtype": p.get("dtype", "bf16")}


def _sm80(kind: str, rows: int, **tiles) -> dict:
    """Schedule of an sm80 attention kernel (FA2, cutlass fmha, cuDNN wmma): mma.sync, the
    two-deep cp.async pipeline, MMAs on the whole ``rows``-row query tile."""
    return {"kind": kind, **tiles, "instruction": "bf16_mma", "stages": FA2_STAGES,
            "compute_rows": rows}


def _attention_schedule(case) -> tuple[dict, str]:
    p = case.params
    backend, d = p["backend"], p["head_dim"]
    k = _main_kernel(case)
    name = k.demangled
    if backend == "flash":
        m = _fields(_FA2_TRAITS, name, case, k, "Flash_fwd_kernel_traits")
        bm, bn = int(m.group(2)), int(m.group(3))
        if "splitkv" in k.name:
            splits = k.grid[1]
            return (_sm80("flash_decoding", bm, block_k=bn, splits=splits, kv_order=FA2_KV_ORDER),
                    f"{k.name} traits<{m.group(1)},{bm},{bn},{m.group(4)}>, grid.y={splits}")
        return (_sm80("flash2", bm, block_q=bm, block_k=bn, kv_order=FA2_KV_ORDER),
                f"{k.name} traits<{m.group(1)},{bm},{bn},{m.group(4)}>")
    if backend == "efficient":
        m = _fields(_CUTLASS, name, case, k, "cutlass AttentionKernel")
        bq, bk = int(m.group(1)), int(m.group(2))
        return (_sm80("flash2", bq, block_q=bq, block_k=bk, reload_q=True),
                f"{k.name} <{bq},{bk},{m.group(3)}>")
    if backend == "cudnn":
        m = _fields(_CUDNN, name, case, k, "tile field")
        bm, bn = int(m.group(1)), int(m.group(2))
        if "sm90" in name and "wgmma" in name:
            bq = CUDNN_SM90_ROWS_PER_WARPGROUP * CUDNN_SM90_CONSUMERS
            smem = k.smem_dynamic_bytes + k.smem_static_bytes
            # the K/V pipeline depth whose SRAM is closest to the reported shared memory
            stages = min(range(1, 9), key=lambda s: abs((bq * d + 2 * s * bn * d) * 2 - smem))
            return ({"kind": "flash2", "block_q": bq, "block_k": bn, "instruction": "bf16_wgmma",
                     "stages": int(stages), "compute_rows": bq},
                    f"{k.name[:60]} {bm}x{bn}x{m.group(3)}, {smem} B smem")
        # sm80 wmma decode kernel: split over gridDim.x when a reduction kernel follows
        if len(case.kernels) > 1:
            return (_sm80("flash_decoding", bm, block_k=bn, splits=k.grid[0]),
                    f"{k.name[:60]} {bm}x{bn}, grid.x={k.grid[0]} + lean_reduction")
        return (_sm80("flash2", bm, block_q=bm, block_k=bn), f"{k.name[:60]} {bm}x{bn}")
    raise InputError(f"case {case.id!r}: unknown attention backend {backend!r}")


def _gemm_schedule(case) -> tuple[dict, str]:
    k = _main_kernel(case)
    m = _fields(_NVJET, k.name, case, k, "nvjet tile field")
    cm, cn, ck, stages = (int(g) for g in m.groups()[:4])
    # cuBLAS is column-major: torch's C[m,n] = A @ B runs as C^T = B^T A^T, so cuBLAS's M is
    # memsim's n and cuBLAS's N is memsim's m.
    sched = {"kind": "gemm_tiled", "tile_m": cn, "tile_n": cm, "tile_k": ck, "stages": stages,
             "instruction": "bf16_wgmma", "raster": "auto", "swizzle": GEMM_SWIZZLE}
    ev = f"{k.name[:40]} {cm}x{cn}_{ck}x{stages}"
    if "splitK" in k.name:
        # split-K (a cublasLt splitKreduce kernel follows): the K splits per output tile are
        # the kernel's CTAs over its tiles (the grid does not give them directly: with a
        # cluster, grid.x is the cluster size)
        p = case.params
        tiles = -(-p["n"] // cm) * -(-p["m"] // cn)
        ctas = k.grid[0] * k.grid[1] * k.grid[2]
        sched["split_k"] = max(1, ctas // tiles)
        ev += f" splitK {sched['split_k']} ({ctas} CTAs / {tiles} tiles)"
    if MULTICAST and m.group(5):
        # the cluster field ({M}x{N} CTAs, TMA multicast of the shared operand), same swap
        clm, cln = int(m.group(5)), int(m.group(6))
        sched.update(cluster_m=cln, cluster_n=clm)
        ev += f" cluster {clm}x{cln}"
    return sched, ev


def map_case(case, hardware: Any = None, granularity: str = "block",
             device: str = "h100") -> CaseModel | None:
    """The model of one measured case of ``device`` (its preset unless ``hardware`` names
    another), or None for records that are not kernels (launch and latency figures, which
    calibrate the preset instead)."""
    prof = DEVICES.get(device)
    if hardware is None:
        hardware = device_profile(device).preset
    sim = {"granularity": granularity,
           "l2_dirty_at_start": prof.l2_dirty_after_flush if prof else 0.0}
    fam = model_family(case)
    if case.family in ("attention_prefill", "attention_decode"):
        if case.params["backend"] == "math":
            return CaseModel(case.id, fam, "math", None, None,
                             f"{len(case.kernels or ())} kernels: fp32 casts, SIMT GEMMs, "
                             "softmax and elementwise passes", case, hardware)
        sched, ev = _attention_schedule(case)
        cfg = {"hardware": hardware, "workload": _attention_workload(case.params),
               "schedule": sched, "simulation": sim}
        return CaseModel(case.id, fam, "tiled", cfg, None, ev)
    if case.family == "gemm":
        sched, ev = _gemm_schedule(case)
        p = case.params
        cfg = {"hardware": hardware,
               "workload": {"kind": "gemm", "m": p["m"], "n": p["n"], "k": p["k"],
                            "dtype": "bf16"},
               "schedule": sched, "simulation": sim}
        return CaseModel(case.id, fam, "tiled", cfg, None, ev)
    if case.family in ("copy_d2d", "copy_d2d_kernel", "copy_h2d", "copy_d2h"):
        direction = {"copy_d2d": "d2d", "copy_d2d_kernel": "d2d", "copy_h2d": "h2d",
                     "copy_d2h": "d2h"}[case.family]
        return CaseModel(case.id, fam, "copy", None,
                         {"direction": direction, "bytes": int(case.params["bytes"])},
                         "cudaMemcpy" if case.family != "copy_d2d_kernel"
                         else "vectorized_elementwise_kernel (torch.neg)", None, hardware)
    return None
