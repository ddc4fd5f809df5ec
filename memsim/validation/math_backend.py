"""The PyTorch SDPA *math* backend as the sequence of kernels it runs.

``torch.nn.functional.scaled_dot_product_attention`` with the math backend
(``aten/src/ATen/native/transformers/attention.cpp``, ``_scaled_dot_product_attention_math``,
torch 2.11) is a composite of ordinary ATen ops. For bf16/fp16 inputs it runs, in this order
(``b·h`` = batch·heads, ``E_q = b·h·nq·d``, ``E_k = b·hk·nk·d``, ``E_s = b·h·nq·nk``; bytes
read -> written, ``i`` = input element size, fp32 = 4 B):

====  =========================================  ====================================  ==========
op    what (ATen)                                bytes                                 kernel
====  =========================================  ====================================  ==========
cast  ``q/k/v.to(float)``                        E·i -> E·4 (one op per tensor)        direct_copy
scale ``q * sqrt(scale)``                        E_q·4 -> E_q·4                        MulFunctor
mask  causal: ``ones(L,S,bool)``, ``.tril()``,   -> nq·nk; nq·nk -> nq·nk; scalars;    FillFunctor
      two scalar fills, ``where`` to fp32        nq·nk -> nq·nk·4                      triu_tril,
                                                                                       where
scale ``k.transpose(-2,-1) * sqrt(scale)``       E_k·4 -> E_k·4                        MulFunctor
gemm  ``S = q @ kᵀ`` (batched, fp32 SIMT)        memsim engine                         gemm/gemv
add   causal: ``S.add_(mask)`` (mask broadcast)  E_s·4 + mask -> E_s·4                 add
soft  ``softmax(S)``                             E_s·4 -> E_s·4                        softmax
eq    ``S.eq(-inf)`` (``_safe_softmax``)          E_s·4 -> E_s                          isneginf
all   ``.all(-1)``                               E_s -> b·h·nq                         reduce
fill  ``scalar_tensor(0)``                       -> 4                                  FillFunctor
where ``where(rows, 0, P)``                      E_s·4 + b·h·nq -> E_s·4               where
cast  ``attn.to(bf16)`` (the returned weights)   E_s·4 -> E_s·i                        copy
gemm  ``O = P @ v``                              memsim engine                         gemm/gemv
cast  ``O.to(bf16)``                             E_q·4 -> E_q·i                        copy
====  =========================================  ====================================  ==========

The measured kernel list of a case is the evidence of *which* kernel runs each op (names are
checked against the table; a mismatch raises :class:`InputError`) and of each GEMM's tiles
(``tilesize{M}x{N}x{K}_stage{S}`` of cuBLAS xmma, ``sgemm_{M}x{N}_{K}x{S}`` of cutlass, the grid
of the gemv kernels). An elementwise op whose largest operand exceeds 2^31 B runs as 2^j
kernels (TensorIterator's 32-bit indexing split halves the tensor until every operand fits);
the op's bytes are split evenly over them. The measured bytes and times are never read.

Per kernel:

* **Memory-bound kernels** (everything but the GEMMs), in the manner of :mod:`.copies`:
  ``time = launch_overhead + R_run / hbm.read_bandwidth + W / hbm.write_bandwidth``.
  ``R_run`` (back-to-back run, what the event timing sees) leaves out an input that the
  previous kernel just wrote when that tensor fits in the L2 (``l2.lru_capacity_bytes``, the reuse capacity).
  The HBM bytes compared with Nsight follow Nsight's protocol (validation/README.md caveats
  1-2: the L2 is flushed before every kernel, so every input is read from HBM; the writes still
  dirty in L2 at the kernel's end are not seen): reads = every input once, except a broadcast
  operand (the causal mask, added to every head) which is read once when its reuse footprint
  (mask + one head's slice in and out) fits in the L2 and once per head otherwise; visible
  writes = ``max(0, W - L2 · W / (R + W))`` -- an LRU L2 fed read and write streams in the
  ratio R : W ends the kernel with that share of it dirty (R = W gives :mod:`.copies`' L2/2).
  L2 read bytes = every element read (the broadcast mask once per head).
* **GEMMs** run through memsim's engine (``gemm`` workload, ``gemm_tiled`` schedule,
  ``fp32_fma``, ``dtype: fp32``). The engine's GEMM has no batch dimension; the b·h
  independent GEMMs (``gridDim.z``) are stacked into one GEMM along the grid dimension that
  keeps the kernel's block order (x fastest, then y, then the batch): along y when the y
  dimension has more than one tile, else along x. Stacking makes the operand of the other
  dimension shared by all heads; each head's block still loads its tiles of it (same L2 read
  bytes, same FLOPs), but the engine's HBM reads see it only once, so ``(b·h - 1)`` times its
  per-head bytes are added to the HBM reads (each head reads its own slice once: compulsory).
  Its time stays the engine's (these FFMA GEMMs are compute bound, and the added bytes are at
  most 1/4 of the GEMM's HBM traffic in these cases).
  GEMMs of more than ``SUB_BLOCKS`` blocks are simulated on sub-batches of ``g`` and ``2g``
  heads (powers of two, ``2g`` heads within ``SUB_BLOCKS / 2`` blocks) and extrapolated: time
  ``t_2g + (t_2g - t_g) / g · (b·h - 2g)`` (the marginal time per head, free of the ramp and
  tail), bytes x ``b·h / 2g`` (the end-of-kernel write-back, at most an L2's worth, unscaled).
  Against full simulations: +0.7 % (attn n4096 d128 QKᵀ), 0.0 % (decode b32 k4096 QKᵀ).
  A gemv kernel (cuBLAS ``gemv2T_kernel_val`` / ``internal::kernel``, no tile in its name):
  one output row, ``tile_n = n / gridDim.x``, and the largest power-of-two ``tile_k`` whose
  double-buffered tiles fit a block's shared memory (its warps keep many loads in flight).

The case time is the sum of its kernels' times (they run back to back on one stream).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError
from .copies import visible_writes

__all__ = ["predict_math_case", "math_ops", "MathOp", "chunk_count", "memory_kernel",
           "gemm_config", "SUB_BLOCKS", "KERNEL_BANDWIDTH", "kernel_class", "aligned_ops"]

FP32 = 4
INT32_MAX = 2 ** 31 - 1
SUB_BLOCKS = 16384
"""GEMMs with more blocks than this are simulated on a sub-batch of heads (see module doc)."""

_XMMA = re.compile(r"tilesize(\d+)x(\d+)x(\d+)_stage(\d+)")
_CUTLASS_SIMT = re.compile(r"sgemm_(\d+)x(\d+)_(\d+)x(\d+)")
_IN_BYTES = {"bf16": 2, "fp16": 2, "float16": 2, "bfloat16": 2, "fp32": 4, "float32": 4}


@dataclass(frozen=True)
class MathOp:
    """One ATen op of the decomposition.

    ``reads``: (tensor, bytes) of each input; ``writes``: (tensor, bytes);
    ``broadcast``: (tensor, bytes, times read, footprint) of an input re-read by every head
    (the causal mask), else None; ``match``: substrings one of which the kernel's demangled
    name must contain; ``kernels``: expected launches (None: 1 or more scalar launches)."""

    role: str
    match: tuple[str, ...]
    reads: tuple = ()
    writes: tuple = ()
    broadcast: tuple | None = None
    kernels: int = 1
    gemm: dict | None = None


def chunk_count(operands) -> int:
    """Launches of one TensorIterator op over ``operands`` = [(elements, element bytes)]:
    halve until every operand's largest byte offset ``1 + (elements - 1) · size`` fits int32
    (``TensorIteratorBase::can_use_32bit_indexing``, ``with_32bit_indexing``)."""
    n = 1
    while any(1 + (e / n - 1) * size > INT32_MAX for e, size in operands if e):
        n *= 2
    return n


def _ew(role, match, reads, writes, broadcast=None):
    """An elementwise op; ``reads``/``writes``: (tensor, elements, element bytes)."""
    ops = [(e, size) for _, e, size in list(reads) + list(writes)]
    return MathOp(role, match, tuple((n, e * size) for n, e, size in reads),
                  tuple((n, e * size) for n, e, size in writes), broadcast, chunk_count(ops))


def math_ops(p) -> list[MathOp]:
    """The op sequence of the math backend for the shape params ``p`` of a case."""
    try:
        b, h, nq, nk, d = (int(p[k]) for k in ("batch", "heads", "seq_q", "seq_k", "head_dim"))
    except KeyError as exc:
        raise InputError(f"math attention case: missing shape param {exc}") from None
    hk = int(p.get("kv_heads", h))
    causal = bool(p.get("causal", False))
    dtype = str(p.get("dtype", "bf16"))
    if dtype not in _IN_BYTES:
        raise InputError(f"math attention case: dtype {dtype!r}, expected one of "
                         f"{', '.join(_IN_BYTES)}")
    i = _IN_BYTES[dtype]
    bh = b * h
    eq, ek, es, ls = bh * nq * d, b * hk * nk * d, bh * nq * nk, nq * nk
    up = i != FP32                       # reduced precision is upcast to fp32 and back
    cast, mul, copy = ("direct_copy",), ("MulFunctor",), ("copy_kernel",)
    ops = []
    if up:
        ops += [_ew("cast_q", cast, [("q", eq, i)], [("q32", eq, 4)]),
                _ew("cast_k", cast, [("k", ek, i)], [("k32", ek, 4)]),
                _ew("cast_v", cast, [("v", ek, i)], [("v32", ek, 4)])]
    ops.append(_ew("scale_q", mul, [("q32", eq, 4)], [("qs", eq, 4)]))
    if causal:
        ops += [_ew("mask_ones", ("FillFunctor<bool>",), [], [("ones", ls, 1)]),
                _ew("mask_tril", ("triu_tril",), [("ones", ls, 1)], [("tril", ls, 1)]),
                MathOp("mask_scalars", ("FillFunctor<float>",), (), (), None, 2),
                _ew("mask_where", ("where_kernel",), [("tril", ls, 1)], [("mask", ls, 4)])]
    ops.append(_ew("scale_k", mul, [("k32", ek, 4)], [("ks", ek, 4)]))
    ops.append(MathOp("gemm_qk", ("gemm", "gemv", "Gemv"), (("qs", eq * 4), ("ks", ek * 4)),
                      (("S", es * 4),), None, 1,
                      {"bh": bh, "m": nq, "n": nk, "k": d}))
    if causal:
        foot = ls * 4 + 2 * nq * nk * 4          # the mask + one head's S slice in and out
        ops.append(_ew("mask_add", ("CUDAFunctor_add",), [("S", es, 4), ("mask", ls, 4)],
                       [("S", es, 4)], ("mask", ls * 4, bh, foot)))
    ops += [MathOp("softmax", ("softmax", "SoftMax"), (("S", es * 4),), (("P", es * 4),)),
            _ew("isneginf", ("isneginf",), [("S", es, 4)], [("neginf", es, 1)]),
            MathOp("all_rows", ("reduce_kernel",), (("neginf", es),), (("rows", bh * nq),)),
            MathOp("fill_zero", ("FillFunctor<float>",), (), (("zero", 4),)),
            _ew("safe_where", ("where_kernel",), [("P", es, 4), ("rows", bh * nq, 1)],
                [("P2", es, 4)])]
    if up:
        ops.append(_ew("cast_attn", copy, [("P2", es, 4)], [("attn", es, i)]))
    ops.append(MathOp("gemm_pv", ("gemm", "gemv", "Gemv"), (("P2", es * 4), ("v32", ek * 4)),
                      (("O32", eq * 4),), None, 1, {"bh": bh, "m": nq, "n": d, "k": nk}))
    if up:
        ops.append(_ew("cast_out", copy, [("O32", eq, 4)], [("O", eq, i)]))
    return ops


def kernel_class(kernel) -> str:
    """The ATen kernel template of a launch (its function name without namespaces), e.g.
    ``vectorized_elementwise_kernel``, ``unrolled_elementwise_kernel``, ``reduce_kernel``."""
    return kernel.name.split("::")[-1]


KERNEL_BANDWIDTH = {
    "cunn_SoftMaxForwardReg": 2.09e12,
    "elementwise_kernel": 2.34e12,
    "reduce_kernel": 1.71e12,
    "softmax_warp_forward": 2.77e12,
    "triu_tril_kernel": 0.565e12,
    "unrolled_elementwise_kernel": 1.96e12,
    "vectorized_elementwise_kernel": 3.13e12,
}
"""Bytes/s (read + written) at which each ATen kernel template streams: the median over its
launches moving >= 8 MB in the calibration split's math cases (Nsight kernel time), computed
by ``memsim.validation.calibrate`` (``math_kernel_bandwidth``). The non-vectorized casts
(``unrolled_elementwise_kernel``, 2-byte loads) stream at 1.96 TB/s, the vectorized kernels at
3.13 TB/s; templates not listed use the preset's HBM bandwidth."""


def memory_kernel(hw, op: MathOp, share: float = 1.0, prev_writes=(),
                  bandwidth: float | None = None) -> dict:
    """Prediction of one launch of a memory-bound op carrying ``share`` of its bytes.
    ``prev_writes``: tensor names the previous kernel wrote (L2 reuse in the timed run);
    ``bandwidth``: the kernel template's streaming rate (read + write), else the preset's."""
    l2 = hw.memory("l2").lru_capacity_bytes
    hbm = hw.memory("hbm")
    bname = op.broadcast[0] if op.broadcast else None
    r_cold = r_run = l2r = 0.0
    for name, nb in op.reads:
        if name == bname:
            _, nb, times, foot = op.broadcast
            hbm_nb = nb if foot <= l2 else nb * times
            r_cold += hbm_nb
            r_run += hbm_nb
            l2r += nb * times
            continue
        r_cold += nb
        l2r += nb
        if not (name in prev_writes and nb <= l2):
            r_run += nb
    w = float(sum(nb for _, nb in op.writes))
    r_cold, r_run, l2r, w = (x * share for x in (r_cold, r_run, l2r, w))
    if bandwidth:
        t = hw.gpu.launch_overhead_s + (r_run + w) / bandwidth
    else:
        t = hw.gpu.launch_overhead_s + r_run / hbm.read_bandwidth + w / hbm.write_bandwidth
    return {"time_s": t, "hbm_read": r_cold, "hbm_write": w,
            "hbm_write_visible": visible_writes(r_cold, w, l2), "l2_read": l2r,
            "hbm_read_run": r_run}


def gemm_config(kernel, g: dict, sram_per_block: float = 227 * 1024) -> tuple[dict, dict]:
    """(engine run configuration without hardware, stacking info) of one batched GEMM kernel
    ``g`` = {bh, m, n, k} (per-head C[m,n] = A[m,k] B[k,n]), tiles read from its name/grid."""
    name = kernel.demangled
    gx, gy, gz = kernel.grid
    bh, m, n, k = g["bh"], g["m"], g["n"], g["k"]
    mt = _XMMA.search(name) or _CUTLASS_SIMT.search(name)
    found = None
    if mt:
        t1, t2, tk, stages = (int(x) for x in mt.groups())
        # which tile size and which problem dimension run along gridDim.x (fast) / y
        for tx, ty in ((t1, t2), (t2, t1)):
            for xdim, ydim in ((m, n), (n, m)):
                if found is None and -(-xdim // tx) == gx and -(-ydim // ty) == gy:
                    found = (xdim, ydim, tx, ty)
    elif m == 1 and gy == 1:
        # cuBLAS gemv: one output row per head, its n outputs split over gridDim.x. Its warps
        # keep many independent loads in flight; memsim expresses that as one large k-tile
        # per step: the largest power of two (<= k) whose double-buffered tiles fit a
        # block's shared memory (a step of a gemv block is latency-, not compute-bound).
        stages, tn = 2, -(-n // gx)
        tk = 1
        while tk * 2 <= k and stages * tk * 2 * (1 + tn) * FP32 <= sram_per_block:
            tk *= 2
        found = (n, 1, tn, 1)
    if found is None or gz != bh:
        raise InputError(f"{kernel.name!r}: grid {kernel.grid} matches no tiling of {bh} "
                         f"GEMMs of {m}x{n}")
    xdim, ydim, tx, ty = found
    # stack the heads along y when y has several tiles (block order x, y, head kept), else
    # along x (one tile row: order head, x kept either way); the other operand is shared
    stack = "y" if gy > 1 else "x"
    shared_bytes = k * (xdim if stack == "y" else ydim) * FP32
    return ({"workload": {"kind": "gemm", "m": ydim, "n": xdim, "k": k, "dtype": "fp32"},
             "schedule": {"kind": "gemm_tiled", "tile_m": min(ty, ydim), "tile_n": min(tx, xdim),
                          "tile_k": min(tk, k), "stages": stages, "instruction": "fp32_fma"},
             "simulation": {"granularity": "block"}},
            {"stack": stack, "heads": bh, "shared_bytes": shared_bytes,
             "blocks_per_head": gx * gy})


def _stacked(cfg: dict, stack: str, g: int) -> dict:
    out = {key: dict(v) for key, v in cfg.items()}
    out["workload"]["m" if stack == "y" else "n"] *= g
    return out


def _engine(hw, cfg: dict, stack: str, heads: int):
    from .compare import predict_case
    from .mapping import CaseModel
    run = _stacked(cfg, stack, heads)
    run["hardware"] = "h100-sxm"     # replaced by ``hw`` (passed as data) in predict_case
    t, _, l2r, det = predict_case(CaseModel("math_gemm", "math", "tiled", run), hw)
    return t, l2r, det, run


def gemm_kernel(hw, kernel, g: dict) -> dict:
    """Prediction of one batched FFMA GEMM/gemv kernel through memsim's engine."""
    sram = hw.memory("sram")
    cfg, info = gemm_config(kernel, g, sram.max_per_block_bytes or sram.capacity_bytes)
    bh, bph, shared = info["heads"], info["blocks_per_head"], info["shared_bytes"]
    sub = bh
    while sub % 2 == 0 and sub * bph > SUB_BLOCKS // 2:
        sub //= 2
    if 2 * sub >= bh:                 # small enough: the whole batch
        t, l2r, det, run = _engine(hw, cfg, info["stack"], bh)
        sub, scale, time_s = bh, 1.0, t
    else:                             # marginal time per head from sub and 2 sub heads
        t1, _, _, _ = _engine(hw, cfg, info["stack"], sub)
        t, l2r, det, run = _engine(hw, cfg, info["stack"], 2 * sub)
        sub *= 2
        scale = bh / sub
        time_s = t + (t - t1) / (sub // 2) * (bh - sub)
    flush = det["end_of_kernel_writeback"]
    # the engine read the shared operand once; every head reads its own slice once
    hbm_r = det["hbm_read"] * scale + (bh - scale) * shared
    hbm_w = det["hbm_write"] * scale
    return {"time_s": time_s, "hbm_read": hbm_r, "hbm_write": hbm_w,
            "hbm_write_visible": hbm_w - flush, "l2_read": l2r * scale,
            "hbm_read_run": hbm_r, "sub_heads": sub, "stack": info["stack"],
            "engine": dict(run["schedule"]) | {"m": run["workload"]["m"],
                                                "n": run["workload"]["n"],
                                                "k": run["workload"]["k"]}}


def aligned_ops(case):
    """[(op, [kernels])]: the case's math-backend op sequence paired with its kernels."""
    return _align(case, math_ops(case.params))


def _align(case, ops):
    """[(op, [kernels])] pairing the op sequence with the case's kernel list."""
    ks = list(case.kernels or ())
    out, pos = [], 0
    for op in ops:
        want = op.kernels
        got = []
        while pos < len(ks) and any(s in ks[pos].demangled for s in op.match) and \
                (want is None or len(got) < want):
            got.append(ks[pos])
            pos += 1
        if not got or (want is not None and len(got) != want):
            where = ks[pos].name if pos < len(ks) else "the end of the kernel list"
            raise InputError(f"case {case.id!r}: expected {want or 'a'} kernel(s) for "
                             f"{op.role} ({'/'.join(op.match)}), found {where!r} "
                             f"after {len(got)}")
        out.append((op, got))
    if pos != len(ks):
        raise InputError(f"case {case.id!r}: {len(ks) - pos} kernel(s) left unexplained, "
                         f"from {ks[pos].name!r}")
    return out


def predict_math_case(case, hw) -> tuple[float, float, float, dict]:
    """(time_s, HBM bytes read+written while kernels run, L2 read bytes, detail) of a
    math-backend attention case. ``detail["kernels"]`` lists every predicted kernel (role,
    name, time, bytes) in launch order."""
    if hw is None:
        from ..hardware import load_hardware
        hw = load_hardware("h100-sxm")
    if not case.kernels:
        raise InputError(f"case {case.id!r} has no profiled kernels: which kernels the math "
                         f"backend ran is unknown")
    rows = []
    prev: tuple = ()
    for op, kernels in _align(case, math_ops(case.params)):
        for k in kernels:
            if op.gemm is not None:
                r = gemm_kernel(hw, k, op.gemm)
            else:
                r = memory_kernel(hw, op, 1.0 / len(kernels), prev,
                                  KERNEL_BANDWIDTH.get(kernel_class(k)))
            rows.append({"role": op.role, "name": k.name, "grid": tuple(k.grid), **r})
        prev = tuple(n for n, _ in op.writes)
    t = sum(r["time_s"] for r in rows)
    hbm = sum(r["hbm_read"] + r["hbm_write_visible"] for r in rows)
    l2 = sum(r["l2_read"] for r in rows)
    detail = {"kernels": rows, "hbm_read": sum(r["hbm_read"] for r in rows),
              "hbm_write": sum(r["hbm_write"] for r in rows),
              "hbm_read_run": sum(r["hbm_read_run"] for r in rows)}
    return t, hbm, l2, detail
